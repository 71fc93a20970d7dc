//! No network: `HF_HUB_OFFLINE` (or the config flag) and an unreachable Hub. A filled cache
//! works with the server stopped; a missing file gives one error naming the repo, the file, the
//! cache folder searched and how to provide the files.

mod common;

use common::*;
use finetune_hub::testing::{commit, sha256_hex};
use finetune_hub::{resolve_model, Error, HubConfig, ModelOptions, Origin};
use std::path::Path;

const REPO: &str = "org/tiny-bert";

#[test]
fn filled_cache_works_offline_and_with_the_hub_unreachable() {
    let (root, mut server) = hub();
    tiny_model(&root, REPO, "main", "v0");
    let cache = tmp("cache");
    let online = cfg(&cache, &server.endpoint());
    let first = resolve_model(REPO, &online, &ModelOptions::default()).unwrap();
    server.stop();

    let offline = HubConfig {
        offline: true,
        ..online.clone()
    };
    let m = resolve_model(REPO, &offline, &ModelOptions::default()).unwrap();
    assert!(matches!(m.origin, Origin::Cache { .. }));
    assert_eq!(m.weights.files, first.weights.files);
    assert_eq!(
        std::fs::read(&m.weights.files[0]).unwrap(),
        weights_bytes("v0")
    );

    // Not offline, but nobody answers: the cache serves (here without even trying).
    let m = resolve_model(REPO, &online, &ModelOptions::default()).unwrap();
    assert_eq!(m.weights.files, first.weights.files);
}

#[test]
fn offline_flag_from_the_environment_variable() {
    let cfg = HubConfig::from_lookup(|k| (k == "HF_HUB_OFFLINE").then(|| "1".to_string()));
    assert!(cfg.offline);
}

/// Writes a snapshot the way Python's huggingface_hub leaves it (no listing of ours).
fn python_snapshot(cache: &Path, repo_folder: &str, commit: &str, files: &[(&str, &[u8])]) {
    let repo_dir = cache.join(repo_folder);
    for (name, bytes) in files {
        let blob = repo_dir.join("blobs").join(sha256_hex(bytes));
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, bytes).unwrap();
        let link = repo_dir.join("snapshots").join(commit).join(name);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        let up = "../".repeat(name.matches('/').count() + 2);
        std::os::unix::fs::symlink(format!("{up}blobs/{}", sha256_hex(bytes)), &link).unwrap();
    }
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), commit).unwrap();
}

#[test]
fn a_python_made_cache_is_found_offline() {
    let cache = tmp("cache");
    let c = "0123456789abcdef0123456789abcdef01234567";
    let w = weights_bytes("py");
    python_snapshot(
        &cache,
        "models--sentence-transformers--all-MiniLM-L6-v2",
        c,
        &[
            ("config.json", b"{}"),
            ("model.safetensors", &w),
            ("vocab.txt", b"[PAD]\n"),
        ],
    );
    let offline = HubConfig {
        offline: true,
        ..cfg(&cache, "http://127.0.0.1:9")
    };
    let m = resolve_model(
        "sentence-transformers/all-MiniLM-L6-v2",
        &offline,
        &ModelOptions::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&m.weights.files[0]).unwrap(), w);

    // Not offline but the Hub is unreachable: the same snapshot serves.
    let (_root, mut server) = hub();
    let unreachable = cfg(&cache, &server.endpoint());
    server.stop();
    let m2 = resolve_model(
        "sentence-transformers/all-MiniLM-L6-v2",
        &unreachable,
        &ModelOptions::default(),
    )
    .unwrap();
    assert_eq!(m2.weights.files, m.weights.files);
    assert_eq!(m.tokenizer.len(), 1);
    assert_eq!(
        m.origin,
        Origin::Cache {
            repo: finetune_hub::RepoId::parse(
                "sentence-transformers/all-MiniLM-L6-v2",
                finetune_hub::RepoKind::Model
            )
            .unwrap(),
            commit: c.to_string()
        }
    );
}

#[test]
fn offline_with_a_shard_missing_names_the_shard_and_the_snapshot() {
    let cache = tmp("cache");
    let c = "89abcdef0123456789abcdef0123456789abcdef";
    let index = br#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#;
    python_snapshot(
        &cache,
        "models--org--big",
        c,
        &[
            ("config.json", b"{}"),
            ("model.safetensors.index.json", index),
            ("model-00001-of-00002.safetensors", b"one"),
        ],
    );
    let cfg = HubConfig {
        offline: true,
        ..cfg(&cache, "http://127.0.0.1:9")
    };
    let e = resolve_model("org/big", &cfg, &ModelOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::NotCached(_)), "{msg}");
    assert!(msg.contains("`model-00002-of-00002.safetensors`"), "{msg}");
    assert!(
        msg.contains(&format!("models--org--big/snapshots/{c}")),
        "{msg}"
    );
}

#[test]
fn nothing_cached_offline_or_unreachable_gives_one_clear_error() {
    let cache = tmp("cache");
    let (_root, mut server) = hub();
    let endpoint = server.endpoint();
    server.stop();
    let offline = HubConfig {
        offline: true,
        ..cfg(&cache, &endpoint)
    };
    let msg = resolve_model(REPO, &offline, &ModelOptions::default())
        .unwrap_err()
        .to_string();
    // Nothing cached: most likely a mistyped local path. One short sentence says so first.
    for part in [
        "org/tiny-bert: no such local folder, and as a Hub id: offline mode is on (HF_HUB_OFFLINE)",
        cache.join("models--org--tiny-bert").to_str().unwrap(),
    ] {
        assert!(msg.contains(part), "missing {part:?} in: {msg}");
    }
    assert!(msg.len() < 250, "{} characters: {msg}", msg.len());
    let online = cfg(&cache, &endpoint);
    let msg = resolve_model(REPO, &online, &ModelOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("org/tiny-bert: no such local folder")
            && msg.contains(&format!(
                "the Hub ({endpoint}) is unreachable (the connection was refused)"
            )),
        "{msg}"
    );
    assert!(msg.len() < 250, "{} characters: {msg}", msg.len());
    // Something cached but not complete: the detailed message, with the way to complete it.
    std::fs::create_dir_all(cache.join("models--org--tiny-bert/refs")).unwrap();
    let msg = resolve_model(REPO, &offline, &ModelOptions::default())
        .unwrap_err()
        .to_string();
    for part in [
        "org/tiny-bert@main",
        "`config.json`",
        "HF_HUB_OFFLINE",
        "huggingface-cli download org/tiny-bert --revision main",
        "local folder",
    ] {
        assert!(msg.contains(part), "missing {part:?} in: {msg}");
    }
}

#[test]
fn unreachable_hub_with_an_incomplete_snapshot_names_the_missing_file() {
    let (root, mut server) = hub();
    tiny_model(&root, REPO, "main", "v0");
    let c = commit(&root, REPO, "main");
    let cache = tmp("cache");
    let cfg = cfg(&cache, &server.endpoint());
    resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
    server.stop();
    let snap = cache.join("models--org--tiny-bert/snapshots").join(&c);
    std::fs::remove_file(snap.join("vocab.txt")).unwrap();
    let e = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::NotCached(_)), "{msg}");
    assert!(
        msg.contains("`vocab.txt`") && msg.contains(snap.to_str().unwrap()),
        "{msg}"
    );
}
