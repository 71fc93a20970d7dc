//! Pushing a model folder to the loopback Hub of `finetune_hub::testing`: the requests
//! `upload_folder` makes (create, preupload, LFS batch, upload, verify, one NDJSON commit), the
//! token on the Hub's endpoints only, small files inline and weights through LFS by sha256, a
//! round trip back through the download path, and every failure one line with no commit.

mod common;

use base64::Engine;
use common::*;
use finetune_hub::testing::{sha256_hex, Fault, HubServer, PushStep, Request};
use finetune_hub::upload::{push_folder, Push, PushReport, RepoName};
use finetune_hub::{resolve_model, Error, HubConfig, ModelOptions, Token};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const TOKEN: &str = "hf_write_secret";

/// A trained model's folder: config, tokenizer, model card, weights, a TensorBoard file, and
/// what must stay home (a lock file, a checkpoint).
fn model_folder(tag: &str) -> PathBuf {
    let dir = tmp("push-src");
    let w = |rel: &str, bytes: &[u8]| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    w("config.json", format!("{{\"tag\":\"{tag}\"}}").as_bytes());
    w("tokenizer.json", b"{\"model\":{}}");
    w(
        "README.md",
        b"---\nlibrary_name: transformers\n---\n# model\n",
    );
    w("model.safetensors", &weights_bytes(tag));
    w("runs/events.out.tfevents.1.host", b"\x00\x01tensorboard");
    w(".lock", b"");
    w("checkpoint-2/model.safetensors", b"old");
    dir
}

/// The files a push of `dir` must commit, with their bytes.
fn expected_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    [
        "README.md",
        "config.json",
        "model.safetensors",
        "runs/events.out.tfevents.1.host",
        "tokenizer.json",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap()))
    .collect()
}

fn writable_hub() -> (PathBuf, HubServer) {
    let (root, server) = hub();
    server.add_writer(TOKEN, "alice", &["alice", "org"]);
    (root, server)
}

fn push(
    dir: &Path,
    repo: &str,
    server: &HubServer,
    tweak: impl FnOnce(&mut Push),
) -> Result<PushReport, Error> {
    let cfg = cfg(&tmp("push-cache"), &server.endpoint());
    push_with(dir, repo, &cfg, TOKEN, tweak)
}

fn push_with(
    dir: &Path,
    repo: &str,
    cfg: &HubConfig,
    token: &str,
    tweak: impl FnOnce(&mut Push),
) -> Result<PushReport, Error> {
    let repo = RepoName::parse(repo).unwrap();
    let token = Token::new(token).unwrap();
    let mut p = Push {
        folder: dir,
        repo: &repo,
        token: &token,
        private: false,
        revision: "main",
        commit_message: "Upload model",
        create_pr: false,
    };
    tweak(&mut p);
    push_folder(&p, cfg, &mut |_| {})
}

fn paths(reqs: &[Request]) -> Vec<String> {
    reqs.iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn commit_requests(server: &HubServer) -> Vec<Request> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/commit/"))
        .collect()
}

#[test]
fn a_model_folder_is_one_commit_small_files_inline_weights_through_lfs() {
    let (root, server) = writable_hub();
    let dir = model_folder("v1");
    let report = push(&dir, "org/tiny", &server, |_| {}).unwrap();
    assert!(report.created);
    assert_eq!(report.repo, "org/tiny");
    assert_eq!(
        report.lfs_files,
        ["model.safetensors", "runs/events.out.tfevents.1.host"]
    );
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    assert_eq!(report.lfs_bytes_sent, weights.len() as u64 + 13);

    let reqs = server.requests();
    let sha = sha256_hex(&weights);
    assert_eq!(
        paths(&reqs),
        [
            "POST /api/repos/create".to_string(),
            "POST /api/models/org/tiny/preupload/main".into(),
            "POST /org/tiny.git/info/lfs/objects/batch".into(),
            format!("PUT /lfs/upload/{sha}"),
            "POST /org/tiny.git/info/lfs/objects/verify".into(),
            format!("PUT /lfs/upload/{}", sha256_hex(b"\x00\x01tensorboard")),
            "POST /org/tiny.git/info/lfs/objects/verify".into(),
            "POST /api/models/org/tiny/commit/main".into(),
        ]
    );
    // The token goes to the Hub's endpoints, never to the storage URLs.
    for r in &reqs {
        let storage = r.path.starts_with("/lfs/upload/");
        let want = (!storage).then(|| format!("Bearer {TOKEN}"));
        assert_eq!(r.authorization, want, "{} {}", r.method, r.path);
    }
    assert_eq!(server.lfs_object(&sha).unwrap(), weights);

    // The commit: a header line, regular files inline in base64, LFS files by sha256 and size.
    let body = String::from_utf8(commit_requests(&server)[0].body.clone()).unwrap();
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["key"], "header");
    assert_eq!(lines[0]["value"]["summary"], "Upload model");
    let line = |path: &str| {
        lines
            .iter()
            .find(|l| l["value"]["path"] == path)
            .unwrap()
            .clone()
    };
    let config = line("config.json");
    assert_eq!(config["key"], "file");
    assert_eq!(config["value"]["encoding"], "base64");
    let inline = base64::engine::general_purpose::STANDARD
        .decode(config["value"]["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(inline, std::fs::read(dir.join("config.json")).unwrap());
    let w = line("model.safetensors");
    assert_eq!(w["key"], "lfsFile");
    assert_eq!(
        (w["value"]["algo"].as_str(), w["value"]["oid"].as_str()),
        (Some("sha256"), Some(sha.as_str()))
    );
    assert_eq!(w["value"]["size"], weights.len());
    assert_eq!(
        lines.len(),
        1 + 5,
        "hidden files and checkpoints stay home: {body}"
    );

    let commits = server.commits();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].files, expected_files(&dir));

    // What was pushed downloads back, byte for byte.
    let cache = tmp("push-back");
    let got = resolve_model(
        "org/tiny",
        &cfg(&cache, &server.endpoint()),
        &ModelOptions::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&got.weights.files[0]).unwrap(), weights);
    let _ = root;
}

#[test]
fn a_second_push_reuses_the_repo_and_the_stored_objects() {
    let (_root, server) = writable_hub();
    let dir = model_folder("v1");
    push(&dir, "org/tiny", &server, |_| {}).unwrap();
    server.clear_requests();
    // A file the repository ignores is left out of the commit.
    std::fs::write(dir.join("notes.log"), "local notes").unwrap();
    server.ignore_path("notes.log");
    std::fs::write(dir.join("config.json"), "{\"tag\":\"v2\"}").unwrap();
    let again = push(&dir, "org/tiny", &server, |p| p.private = true).unwrap();
    assert!(!again.created, "409 from create means it exists");
    assert_eq!(again.lfs_bytes_sent, 0);
    assert_eq!(again.ignored, ["notes.log"]);
    assert!(!again.files.contains(&"notes.log".to_string()));
    let reqs = paths(&server.requests());
    assert!(!reqs.iter().any(|r| r.starts_with("PUT ")), "{reqs:?}");
    assert_eq!(
        server.is_private("org/tiny"),
        Some(false),
        "an existing repo keeps its visibility"
    );
    let commits = server.commits();
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[1].files["config.json"], b"{\"tag\":\"v2\"}");
    assert_eq!(commits[1].files, expected_files(&dir));
}

#[test]
fn private_bare_names_branches_and_pull_requests() {
    let (_root, server) = writable_hub();
    let dir = model_folder("v1");
    let r = push(&dir, "mine", &server, |p| p.private = true).unwrap();
    assert_eq!(r.repo, "alice/mine", "a bare name is the token owner's");
    assert_eq!(server.is_private("alice/mine"), Some(true));
    assert!(paths(&server.requests()).contains(&"GET /api/whoami-v2".to_string()));

    let r = push(&dir, "org/tiny", &server, |p| p.revision = "dev").unwrap();
    assert!(paths(&server.requests()).contains(&"POST /api/models/org/tiny/branch/dev".to_string()));
    assert_eq!(server.commits().last().unwrap().revision, "dev");
    assert_eq!(r.revision, "dev");

    let r = push(&dir, "org/tiny", &server, |p| p.create_pr = true).unwrap();
    let last = commit_requests(&server).pop().unwrap();
    assert_eq!(last.query.as_deref(), Some("create_pr=1"));
    assert_eq!(server.commits().last().unwrap().revision, "refs/pr/1");
    assert!(r
        .pull_request_url
        .unwrap()
        .ends_with("/org/tiny/discussions/1"));
}

#[test]
fn a_large_object_goes_in_parts_when_the_server_asks() {
    let (_root, server) = writable_hub();
    server.multipart_above(4096);
    let dir = model_folder("big");
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(weights.len() > 2 * 4096);
    push(&dir, "org/tiny", &server, |_| {}).unwrap();
    let sha = sha256_hex(&weights);
    let parts: Vec<String> = paths(&server.requests())
        .into_iter()
        .filter(|p| p.starts_with(&format!("PUT /lfs/part/{sha}/")))
        .collect();
    assert_eq!(parts.len(), weights.len().div_ceil(4096), "{parts:?}");
    assert!(paths(&server.requests()).contains(&format!("POST /lfs/complete/{sha}")));
    assert_eq!(server.lfs_object(&sha).unwrap(), weights);
    assert_eq!(server.commits()[0].files, expected_files(&dir));
}

#[test]
fn an_interrupted_upload_makes_no_commit() {
    for fault in [Fault::DropMidBody, Fault::Status(500)] {
        let (_root, server) = writable_hub();
        server.inject_push(PushStep::Upload, fault);
        let e = push(&model_folder("v1"), "org/tiny", &server, |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("org/tiny: "), "{e}");
        assert!(
            e.contains("`model.safetensors`") && e.contains("nothing was committed"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        assert!(commit_requests(&server).is_empty(), "{fault:?}");
        assert!(server.commits().is_empty());
    }
}

#[test]
fn an_upload_that_breaks_off_once_is_tried_again() {
    let (_root, server) = writable_hub();
    server.inject_push_once(PushStep::Upload, Fault::DropMidBody);
    let dir = model_folder("v1");
    let cfg = HubConfig {
        retries: 1,
        ..cfg(&tmp("push-cache"), &server.endpoint())
    };
    push_with(&dir, "org/tiny", &cfg, TOKEN, |_| {}).unwrap();
    let sha = sha256_hex(&std::fs::read(dir.join("model.safetensors")).unwrap());
    let puts = paths(&server.requests())
        .into_iter()
        .filter(|p| *p == format!("PUT /lfs/upload/{sha}"))
        .count();
    assert_eq!(puts, 2, "the broken PUT and its retry");
    assert_eq!(server.commits()[0].files, expected_files(&dir));
}

#[test]
fn refusals_are_one_line_naming_the_repo_and_what_to_do() {
    let cases = [
        (401, "invalid or expired"),
        (403, "write access"),
        (404, "check the repository id"),
        (409, "push again"),
        (503, "try again later"),
    ];
    for (status, todo) in cases {
        let (_root, server) = writable_hub();
        server.inject_push(PushStep::Commit, Fault::Status(status));
        let e = push(&model_folder("v1"), "org/tiny", &server, |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("org/tiny: the Hub answered HTTP "), "{e}");
        assert!(
            e.contains(&format!("HTTP {status} while committing")),
            "{e}"
        );
        assert!(
            e.contains(todo) && e.contains("nothing was committed"),
            "{e}"
        );
        assert!(!e.contains('\n') && !e.contains(TOKEN), "{e}");
        assert!(server.commits().is_empty());
    }
    // The connection lost while the Hub commits: the commit's fate is unknown, and said so.
    let (_root, server) = writable_hub();
    server.inject_push(PushStep::Commit, Fault::DropMidBody);
    let e = push(&model_folder("v1"), "org/tiny", &server, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("org/tiny: the connection broke off while committing"),
        "{e}"
    );
    assert!(e.contains("whether the commit was made is unknown"), "{e}");
    assert!(!e.contains("127.0.0.1"), "no URL in a transport error: {e}");
    // Without injection: a token the Hub does not know, and one for another namespace.
    let (_root, server) = writable_hub();
    let cfg = cfg(&tmp("push-cache"), &server.endpoint());
    let e = push_with(&model_folder("v1"), "org/tiny", &cfg, "hf_unknown", |_| {}).unwrap_err();
    assert!(
        e.to_string()
            .contains("HTTP 401 while creating the repository"),
        "{e}"
    );
    let e = push(&model_folder("v1"), "bob/tiny", &server, |_| {}).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bob/tiny: the Hub answered HTTP 403"),
        "{e}"
    );
    assert!(server.commits().is_empty());
}

#[test]
fn offline_unreachable_and_not_a_model_send_nothing() {
    let (_root, server) = writable_hub();
    let dir = model_folder("v1");
    let offline = HubConfig {
        offline: true,
        ..cfg(&tmp("push-cache"), &server.endpoint())
    };
    let e = push_with(&dir, "org/tiny", &offline, TOKEN, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("org/tiny: HF_HUB_OFFLINE is set"), "{e}");

    let no_weights = tmp("push-empty");
    std::fs::write(no_weights.join("config.json"), "{}").unwrap();
    let e = push(&no_weights, "org/tiny", &server, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a model folder"), "{e}");
    assert!(
        server.requests().is_empty(),
        "{:?}",
        paths(&server.requests())
    );

    let e = push(&dir, "org/tiny", &server, |p| p.revision = "a/../b")
        .unwrap_err()
        .to_string();
    assert!(e.contains("revision"), "{e}");

    let mut gone = server;
    let endpoint = gone.endpoint();
    gone.stop();
    let unreachable = cfg(&tmp("push-cache"), &endpoint);
    let e = push_with(&dir, "org/tiny", &unreachable, TOKEN, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("could not be reached") && e.contains("nothing was committed"),
        "{e}"
    );
    assert!(e.contains(&endpoint), "{e}");
}
