//! The real hf-hub download path against a loopback Hub: the first resolution fills the cache,
//! the second asks nothing; revisions, shards, `HF_ENDPOINT`, and a cache Python could read.

mod common;

use common::*;
use finetune_hub::testing::{commit, git_sha1_hex, put, sha256_hex};
use finetune_hub::{resolve_model, HubConfig, ModelOptions, Origin};
use std::path::Path;

const REPO: &str = "org/tiny-bert";

#[test]
fn first_resolution_downloads_and_second_makes_no_request() {
    let (root, server) = hub();
    tiny_model(&root, REPO, "main", "v0");
    let cache = tmp("cache");
    let cfg = cfg(&cache, &server.endpoint());

    let m = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
    let want_commit = commit(&root, REPO, "main");
    match &m.origin {
        Origin::Downloaded { commit, files, .. } => {
            assert_eq!(commit, &want_commit);
            assert_eq!(*files, 4, "config, tokenizer.json, vocab.txt, weights");
        }
        o => panic!("expected a download, got {o:?}"),
    }
    assert_eq!(
        std::fs::read(&m.weights.files[0]).unwrap(),
        weights_bytes("v0")
    );
    assert_eq!(
        std::fs::read_to_string(m.config.as_ref().unwrap()).unwrap(),
        "{\"tag\":\"v0\"}"
    );
    let tok: Vec<_> = m
        .tokenizer
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(tok, ["tokenizer.json", "vocab.txt"]);
    assert!(m.preprocessor.is_none());
    assert!(!m.weights.pickle);
    assert_eq!(
        count(&server, "pytorch_model.bin"),
        0,
        "pickle never fetched"
    );
    assert_eq!(count(&server, "README.md"), 0);
    assert_eq!(count(&server, "/api/models/org/tiny-bert/revision/main"), 1);
    assert!(count(&server, "/resolve/main/model.safetensors") >= 1);

    server.clear_requests();
    let again = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
    assert!(
        server.requests().is_empty(),
        "second resolution asked: {:?}",
        server.requests()
    );
    assert!(
        matches!(again.origin, Origin::Cache { .. }),
        "{:?}",
        again.origin
    );
    assert_eq!(again.weights.files, m.weights.files);
}

fn link_target(p: &Path) -> String {
    std::fs::read_link(p).unwrap().to_string_lossy().to_string()
}

#[test]
fn cache_layout_is_the_one_python_huggingface_hub_reads() {
    let (root, server) = hub();
    tiny_model(&root, REPO, "main", "v0");
    let cache = tmp("cache");
    resolve_model(
        REPO,
        &cfg(&cache, &server.endpoint()),
        &ModelOptions::default(),
    )
    .unwrap();

    let repo_dir = cache.join("models--org--tiny-bert");
    let c = commit(&root, REPO, "main");
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        c,
        "no newline"
    );
    let snap = repo_dir.join("snapshots").join(&c);
    let weights = weights_bytes("v0");
    assert_eq!(
        link_target(&snap.join("model.safetensors")),
        format!("../../blobs/{}", sha256_hex(&weights))
    );
    let config = b"{\"tag\":\"v0\"}";
    assert_eq!(
        link_target(&snap.join("config.json")),
        format!("../../blobs/{}", git_sha1_hex(config))
    );
    assert_eq!(
        std::fs::read(repo_dir.join("blobs").join(sha256_hex(&weights))).unwrap(),
        weights
    );
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(repo_dir.join("blobs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn revision_picks_the_files_of_that_revision() {
    let (root, server) = hub();
    tiny_model(&root, REPO, "main", "main-weights");
    tiny_model(&root, REPO, "v1", "v1-weights");
    let cache = tmp("cache");
    let cfg = cfg(&cache, &server.endpoint());
    let opts = ModelOptions::default();

    let v1 = resolve_model(&format!("{REPO}@v1"), &cfg, &opts).unwrap();
    assert_eq!(
        std::fs::read(&v1.weights.files[0]).unwrap(),
        weights_bytes("v1-weights")
    );
    let c1 = commit(&root, REPO, "v1");
    assert!(
        v1.dir.ends_with(format!("snapshots/{c1}")),
        "{}",
        v1.dir.display()
    );
    assert_eq!(count(&server, "/resolve/main/"), 0, "only v1 was asked for");

    let main = resolve_model(REPO, &cfg, &opts).unwrap();
    assert_eq!(
        std::fs::read(&main.weights.files[0]).unwrap(),
        weights_bytes("main-weights")
    );
    assert_ne!(main.dir, v1.dir);

    // A commit hash as the revision: the same snapshot, no request, no refs/<commit> file.
    server.clear_requests();
    let by_commit = resolve_model(&format!("{REPO}@{c1}"), &cfg, &opts);
    let by_commit = by_commit.unwrap();
    assert_eq!(by_commit.dir, v1.dir);
    let repo_dir = cache.join("models--org--tiny-bert");
    assert!(!repo_dir.join("refs").join(&c1).exists());
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/v1")).unwrap(),
        c1
    );
}

#[test]
fn a_commit_revision_downloads_into_that_snapshot_without_a_ref() {
    let (root, server) = hub();
    tiny_model(&root, REPO, "v2", "v2");
    let c = commit(&root, REPO, "v2");
    let cache = tmp("cache");
    let m = resolve_model(
        &format!("{REPO}@{c}"),
        &cfg(&cache, &server.endpoint()),
        &ModelOptions::default(),
    )
    .unwrap();
    assert!(matches!(m.origin, Origin::Downloaded { .. }));
    assert_eq!(
        std::fs::read(&m.weights.files[0]).unwrap(),
        weights_bytes("v2")
    );
    assert!(count(&server, &format!("/resolve/{c}/model.safetensors")) >= 1);
    let refs = cache.join("models--org--tiny-bert/refs");
    assert!(
        !refs.join(&c).exists(),
        "Python writes no ref named by a commit"
    );
}

#[test]
fn sharded_checkpoint_downloads_the_index_and_every_shard() {
    let (root, server) = hub();
    let repo = "org/sharded";
    put(&root, repo, "main", "config.json", b"{}");
    let index = r#"{"metadata":{"total_size":3},"weight_map":{
        "a.weight":"model-00001-of-00003.safetensors",
        "b.weight":"model-00002-of-00003.safetensors",
        "c.weight":"model-00003-of-00003.safetensors",
        "d.weight":"model-00001-of-00003.safetensors"}}"#;
    put(
        &root,
        repo,
        "main",
        "model.safetensors.index.json",
        index.as_bytes(),
    );
    for i in 1..=3 {
        let name = format!("model-0000{i}-of-00003.safetensors");
        put(&root, repo, "main", &name, &weights_bytes(&name));
    }
    put(
        &root,
        repo,
        "main",
        "model-old.safetensors",
        b"not in the index",
    );
    let cache = tmp("cache");
    let cfg = cfg(&cache, &server.endpoint());
    let m = resolve_model(repo, &cfg, &ModelOptions::default()).unwrap();
    assert!(
        matches!(m.origin, Origin::Downloaded { files: 5, .. }),
        "{:?}",
        m.origin
    );
    assert_eq!(m.weights.files.len(), 3);
    for (i, f) in m.weights.files.iter().enumerate() {
        let name = format!("model-0000{}-of-00003.safetensors", i + 1);
        assert!(f.ends_with(&name));
        assert_eq!(std::fs::read(f).unwrap(), weights_bytes(&name));
    }
    assert!(m.weights.index.as_ref().unwrap().is_file());
    assert_eq!(count(&server, "model-old"), 0);

    server.clear_requests();
    resolve_model(repo, &cfg, &ModelOptions::default()).unwrap();
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn hf_endpoint_and_hf_home_are_honoured() {
    let (root, server) = hub();
    tiny_model(&root, REPO, "main", "v0");
    let home = tmp("home");
    let endpoint = format!("{}/", server.endpoint()); // a trailing slash is tolerated
    let cfg = HubConfig::from_lookup(|k| match k {
        "HF_ENDPOINT" => Some(endpoint.clone()),
        "HF_HOME" => Some(home.to_string_lossy().to_string()),
        _ => None,
    });
    let mut cfg = cfg;
    cfg.progress = false;
    let m = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
    assert!(
        count(&server, "/api/models/org/tiny-bert") == 1,
        "{:?}",
        server.requests()
    );
    assert!(
        m.dir
            .starts_with(home.join("hub/models--org--tiny-bert/snapshots")),
        "{}",
        m.dir.display()
    );
}

#[test]
fn a_snapshot_python_downloaded_is_used_after_one_listing_request() {
    let (root, server) = hub();
    tiny_model(&root, REPO, "main", "v0");
    let c = commit(&root, REPO, "main");
    let cache = tmp("cache");
    // What Python leaves: blobs, snapshot links, refs/main; no listing of ours.
    let repo_dir = cache.join("models--org--tiny-bert");
    for f in [
        "config.json",
        "tokenizer.json",
        "vocab.txt",
        "model.safetensors",
    ] {
        let bytes = std::fs::read(root.join(REPO).join("resolve/main").join(f)).unwrap();
        let blob = repo_dir.join("blobs").join(sha256_hex(&bytes));
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, &bytes).unwrap();
        let link = repo_dir.join("snapshots").join(&c).join(f);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{}", sha256_hex(&bytes)), &link).unwrap();
    }
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), &c).unwrap();

    let cfg = cfg(&cache, &server.endpoint());
    let m = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
    assert!(matches!(m.origin, Origin::Cache { .. }), "{:?}", m.origin);
    assert_eq!(
        server.requests().len(),
        1,
        "only the listing: {:?}",
        server.requests()
    );
    server.clear_requests();
    resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn pickles_are_fetched_only_when_allowed_and_no_safetensors_exist() {
    let (root, server) = hub();
    let repo = "org/old";
    put(&root, repo, "main", "config.json", b"{}");
    put(
        &root,
        repo,
        "main",
        "pytorch_model.bin",
        &weights_bytes("bin"),
    );
    let cache = tmp("cache");
    let cfg = cfg(&cache, &server.endpoint());
    let e = resolve_model(repo, &cfg, &ModelOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--allow-pickle") && e.contains("org/old@main"),
        "{e}"
    );
    assert_eq!(count(&server, "pytorch_model.bin"), 0);
    let m = resolve_model(repo, &cfg, &ModelOptions { allow_pickle: true }).unwrap();
    assert!(m.weights.pickle);
    assert_eq!(
        std::fs::read(&m.weights.files[0]).unwrap(),
        weights_bytes("bin")
    );
}
