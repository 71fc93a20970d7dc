//! Faults on the loopback Hub: not found, server errors, connections dropped mid-body, bodies
//! cut short or corrupted without a transport error, hostile shard names, private repos. After
//! each, the cache holds nothing a later run would take for a complete file.

mod common;

use common::*;
use finetune_hub::testing::{commit, put, sha256_hex, Fault};
use finetune_hub::{resolve_model, Error, ModelOptions, Origin, Token};
use std::path::Path;

const REPO: &str = "org/tiny-bert";

/// Whether the snapshot lists `file`, or any non-`.part` blob holds `bytes`.
fn cached(cache: &Path, commit: &str, file: &str, bytes: &[u8]) -> (bool, bool) {
    let repo = cache.join("models--org--tiny-bert");
    let linked = repo.join("snapshots").join(commit).join(file).exists();
    let blob = repo.join("blobs").join(sha256_hex(bytes)).exists()
        || std::fs::read_dir(repo.join("blobs"))
            .map(|d| {
                d.flatten().any(|e| {
                    !e.file_name().to_string_lossy().ends_with(".part")
                        && std::fs::read(e.path()).ok().as_deref() == Some(bytes)
                })
            })
            .unwrap_or(false);
    (linked, blob)
}

#[test]
fn missing_repo_revision_and_file_say_not_found() {
    let (root, server) = hub();
    tiny_model(&root, REPO, "main", "v0");
    let cache = tmp("cache");
    let cfg = cfg(&cache, &server.endpoint());
    let opts = ModelOptions::default();

    let e = resolve_model("org/nope", &cfg, &opts).unwrap_err();
    assert!(matches!(e, Error::RepoNotFound { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("org/nope@main") && msg.contains("no such repository or revision"),
        "{msg}"
    );

    let e = resolve_model(&format!("{REPO}@v9"), &cfg, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("org/tiny-bert@v9") && e.contains("no such repository or revision"),
        "{e}"
    );

    server.inject("vocab.txt", Fault::Status(404));
    let e = resolve_model(REPO, &cfg, &opts).unwrap_err();
    assert!(matches!(e, Error::FileNotFound { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("`vocab.txt` not found") && msg.contains("org/tiny-bert@main"),
        "{msg}"
    );
}

#[test]
fn server_error_is_clear_and_leaves_no_file() {
    let (root, server) = hub();
    tiny_model(&root, REPO, "main", "v0");
    let c = commit(&root, REPO, "main");
    let cache = tmp("cache");
    let cfg = cfg(&cache, &server.endpoint());
    server.inject("model.safetensors", Fault::Status(500));
    let e = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Server { status: 500, .. }), "{msg}");
    assert!(
        msg.contains("HTTP 500")
            && msg.contains("`model.safetensors`")
            && msg.contains("org/tiny-bert@main"),
        "{msg}"
    );
    assert_eq!(
        cached(&cache, &c, "model.safetensors", &weights_bytes("v0")),
        (false, false)
    );

    server.clear_faults();
    let m = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
    assert_eq!(
        std::fs::read(&m.weights.files[0]).unwrap(),
        weights_bytes("v0")
    );
}

#[test]
fn connection_dropped_mid_body_leaves_no_complete_file_and_the_next_run_resumes() {
    for file in ["model.safetensors", "vocab.txt"] {
        let (root, server) = hub();
        tiny_model(&root, REPO, "main", "v0");
        let c = commit(&root, REPO, "main");
        let bytes = std::fs::read(root.join(REPO).join("resolve/main").join(file)).unwrap();
        let cache = tmp("cache");
        let cfg = cfg(&cache, &server.endpoint());
        server.inject(file, Fault::DropMidBody);
        let e = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Transfer { .. }), "{msg}");
        assert!(
            msg.contains(&format!("`{file}`")) && msg.contains("broke off"),
            "{msg}"
        );
        assert_eq!(cached(&cache, &c, file, &bytes), (false, false), "{file}");

        server.clear_faults();
        server.clear_requests();
        let m = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
        let got = m.dir.join(file);
        assert_eq!(std::fs::read(got).unwrap(), bytes, "{file}");
        let resumed = server.requests().iter().any(|r| {
            r.path.ends_with(file)
                && r.range
                    .as_deref()
                    .is_some_and(|x| x.starts_with("bytes=") && !x.starts_with("bytes=0-"))
        });
        assert!(
            resumed,
            "{file}: no ranged resume in {:?}",
            server.requests()
        );
    }
}

#[test]
fn bodies_cut_short_or_corrupted_without_a_transport_error_are_caught_by_the_checksum() {
    for (file, fault) in [
        ("model.safetensors", Fault::TruncateWithoutLength),
        ("vocab.txt", Fault::TruncateWithoutLength),
        ("model.safetensors", Fault::CorruptByte),
        ("config.json", Fault::CorruptByte),
    ] {
        let (root, server) = hub();
        tiny_model(&root, REPO, "main", "v0");
        let c = commit(&root, REPO, "main");
        let bytes = std::fs::read(root.join(REPO).join("resolve/main").join(file)).unwrap();
        let cache = tmp("cache");
        let cfg = cfg(&cache, &server.endpoint());
        server.inject(file, fault);
        let e = resolve_model(REPO, &cfg, &ModelOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("downloaded `{file}` does not match its")),
            "{file} {fault:?}: {e}"
        );
        let repo_dir = cache.join("models--org--tiny-bert");
        assert!(
            !repo_dir.join("snapshots").join(&c).join(file).exists(),
            "{file} {fault:?}"
        );
        let blobs: Vec<_> = std::fs::read_dir(repo_dir.join("blobs"))
            .unwrap()
            .flatten()
            .collect();
        for b in blobs {
            let name = b.file_name().to_string_lossy().to_string();
            if !name.ends_with(".lock") && !name.ends_with(".part") {
                assert!(
                    std::fs::read_dir(repo_dir.join("snapshots").join(&c))
                        .unwrap()
                        .flatten()
                        .any(|s| {
                            std::fs::canonicalize(s.path()).ok()
                                == std::fs::canonicalize(b.path()).ok()
                        }),
                    "{file} {fault:?}: blob {name} is linked from no snapshot entry"
                );
            }
        }
        server.clear_faults();
        let m = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
        assert_eq!(
            std::fs::read(m.dir.join(file)).unwrap(),
            bytes,
            "{file} {fault:?}"
        );
    }
}

#[test]
fn a_shard_name_escaping_the_snapshot_is_refused_before_any_request() {
    let (root, server) = hub();
    let repo = "org/evil";
    put(&root, repo, "main", "config.json", b"{}");
    let index =
        r#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"../../evil.safetensors"}}"#;
    put(
        &root,
        repo,
        "main",
        "model.safetensors.index.json",
        index.as_bytes(),
    );
    put(
        &root,
        repo,
        "main",
        "model-00001-of-00002.safetensors",
        b"shard",
    );
    let cache = tmp("cache");
    let e = resolve_model(
        repo,
        &cfg(&cache, &server.endpoint()),
        &ModelOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("`../../evil.safetensors`") && msg.contains("escape"),
        "{msg}"
    );
    assert_eq!(count(&server, "evil.safetensors"), 0);
    assert_eq!(
        count(&server, "model-00001-of-00002"),
        0,
        "nothing fetched after the refusal"
    );
    let outside = cache.join("models--org--evil/evil.safetensors");
    assert!(!outside.exists() && !cache.join("evil.safetensors").exists());
}

#[test]
fn private_repo_needs_the_token_which_is_sent_but_never_printed() {
    let (root, server) = hub();
    tiny_model(&root, REPO, "main", "v0");
    let secret = "hf_TopSecretValue123";
    server.require_token(REPO, secret);
    let cache = tmp("cache");
    let mut cfg = cfg(&cache, &server.endpoint());

    let e = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::AccessDenied { status: 401, .. }),
        "{msg}"
    );
    assert!(msg.contains("set HF_TOKEN"), "{msg}");

    cfg.token = Token::new("hf_WrongButSecret999");
    let msg = resolve_model(REPO, &cfg, &ModelOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("has no access") && !msg.contains("hf_WrongButSecret999"),
        "{msg}"
    );
    assert!(!format!("{cfg:?}").contains("hf_WrongButSecret999"));

    cfg.token = Token::new(secret);
    let m = resolve_model(REPO, &cfg, &ModelOptions::default()).unwrap();
    assert!(matches!(m.origin, Origin::Downloaded { .. }));
    let bearer = format!("Bearer {secret}");
    assert!(server
        .requests()
        .iter()
        .any(|r| r.authorization.as_deref() == Some(bearer.as_str())));
}
