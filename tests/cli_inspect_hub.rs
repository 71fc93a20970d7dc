//! `finetune inspect` given a Hub id: resolved through the real hf-hub download path against the
//! loopback Hub of `finetune_hub::testing`, configured through the environment variables a user
//! sets (`HF_ENDPOINT`, `HF_HOME`, `HF_HUB_OFFLINE`).

mod common;

use candle_core::{DType, Device, Tensor};
use common::finetune_with_hub_env as finetune;
use finetune_hub::testing::{commit, put, sha256_hex, HubServer};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-inspect-hub-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn safetensors_bytes(dir: &Path) -> Vec<u8> {
    let dev = Device::Cpu;
    let tensors: HashMap<String, Tensor> = [
        (
            "embeddings.word_embeddings.weight",
            Tensor::zeros((10, 4), DType::F32, &dev),
        ),
        (
            "encoder.layer.0.output.dense.weight",
            Tensor::zeros((4, 4), DType::F32, &dev),
        ),
        (
            "encoder.layer.0.output.dense.bias",
            Tensor::zeros(4, DType::F32, &dev),
        ),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t.unwrap()))
    .collect();
    let p = dir.join("w.safetensors");
    candle_core::safetensors::save(&tensors, &p).unwrap();
    std::fs::read(p).unwrap()
}

#[test]
fn inspect_accepts_a_hub_id_and_then_works_offline() {
    let root = tmpdir("root");
    let work = tmpdir("work");
    let home = tmpdir("home");
    let repo = "org/tiny-bert";
    put(
        &root,
        repo,
        "main",
        "config.json",
        b"{\"model_type\":\"bert\"}",
    );
    put(
        &root,
        repo,
        "main",
        "model.safetensors",
        &safetensors_bytes(&work),
    );
    let mut server = HubServer::start(&root);
    let endpoint = server.endpoint();
    let home_s = home.to_str().unwrap();

    let out = finetune(
        &["inspect", repo, "--json", "--freeze", "embeddings.*"],
        &[("HF_ENDPOINT", &endpoint), ("HF_HOME", home_s)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tensors"].as_array().unwrap().len(), 3);
    assert_eq!(v["total_params"], 40 + 16 + 4);
    assert_eq!(v["trainable_params"], 16 + 4);
    assert!(server
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/resolve/main/model.safetensors")));
    let snap = home
        .join("hub/models--org--tiny-bert/snapshots")
        .join(commit(&root, repo, "main"));
    assert!(
        snap.join("model.safetensors").is_file(),
        "{}",
        snap.display()
    );

    // Server gone, offline: the cache answers, byte for byte the same report.
    server.stop();
    let again = finetune(
        &["inspect", repo, "--json", "--freeze", "embeddings.*"],
        &[
            ("HF_ENDPOINT", &endpoint),
            ("HF_HOME", home_s),
            ("HF_HUB_OFFLINE", "1"),
        ],
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(again.stdout, out.stdout);

    // Something never downloaded: one short line saying there is no such folder, naming the
    // cache folder and why the Hub was not asked.
    let missing = finetune(
        &["inspect", "org/absent@v1"],
        &[
            ("HF_ENDPOINT", &endpoint),
            ("HF_HOME", home_s),
            ("HF_HUB_OFFLINE", "1"),
        ],
    );
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for part in [
        "org/absent@v1: no such local folder",
        "models--org--absent",
        "HF_HUB_OFFLINE",
    ] {
        assert!(err.contains(part), "missing {part:?} in: {err}");
    }
    for d in [root, work, home] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// `finetune inspect REPO --json` against `endpoint` and `home`, its stderr collected as it
/// comes.
fn spawn_inspect(
    repo: &str,
    endpoint: &str,
    home: &Path,
) -> (std::process::Child, Arc<Mutex<String>>) {
    let mut cmd = common::finetune_cmd();
    cmd.args(["inspect", repo, "--json"])
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", home)
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_HUB_CACHE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let err = Arc::new(Mutex::new(String::new()));
    let (stream, sink) = (child.stderr.take().unwrap(), err.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    (child, err)
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const WAITING: &str = "waiting for another process downloading `model.safetensors`";

/// Python's lock on a blob: `{cache}/.locks/models--org--name/{etag}.lock`, held.
fn hold_python_lock(home: &Path, repo_folder: &str, etag: &str) -> std::fs::File {
    let dir = home.join("hub/.locks").join(repo_folder);
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join(format!("{etag}.lock"))).unwrap();
    f.lock().unwrap();
    f
}

#[test]
fn concurrent_downloads_take_pythons_blob_lock_and_write_the_blob_once() {
    let (root, work, home) = (
        tmpdir("lock-root"),
        tmpdir("lock-work"),
        tmpdir("lock-home"),
    );
    let weights = safetensors_bytes(&work);
    let etag = sha256_hex(&weights);
    for repo in ["org/tiny-bert", "org/other-bert"] {
        put(
            &root,
            repo,
            "main",
            "config.json",
            b"{\"model_type\":\"bert\"}",
        );
        put(&root, repo, "main", "model.safetensors", &weights);
    }
    let server = HubServer::start(&root);
    let endpoint = server.endpoint();
    let body_requests = |repo: &str| {
        server
            .requests()
            .iter()
            .filter(|r| r.path.starts_with(&format!("/cdn/{repo}/")))
            .filter(|r| r.path.ends_with("/model.safetensors"))
            .filter(|r| r.range.as_deref() != Some("bytes=0-0"))
            .count()
    };

    // Two of ours at once, while another process (Python, say) holds the blob's lock: both
    // wait; once it is released, one downloads and the other links that blob.
    let python = hold_python_lock(&home, "models--org--tiny-bert", &etag);
    let runs = [0, 1].map(|_| spawn_inspect("org/tiny-bert", &endpoint, &home));
    for (_, err) in &runs {
        wait_until(WAITING, || err.lock().unwrap().contains(WAITING));
    }
    assert_eq!(
        body_requests("org/tiny-bert"),
        0,
        "downloaded under a held lock"
    );
    drop(python);
    let mut reports = Vec::new();
    for (child, err) in runs {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", err.lock().unwrap());
        reports.push(out.stdout);
    }
    assert_eq!(reports[0], reports[1]);
    assert_eq!(
        body_requests("org/tiny-bert"),
        1,
        "{:#?}",
        server.requests()
    );
    let cached = home.join("hub/models--org--tiny-bert");
    assert_eq!(
        std::fs::read(cached.join("blobs").join(&etag)).unwrap(),
        weights
    );
    let snapshot = cached
        .join("snapshots")
        .join(commit(&root, "org/tiny-bert", "main"));
    assert_eq!(
        std::fs::read(snapshot.join("model.safetensors")).unwrap(),
        weights
    );

    // The lock holder completes the blob itself (as Python does): ours only links it.
    let python = hold_python_lock(&home, "models--org--other-bert", &etag);
    let (child, err) = spawn_inspect("org/other-bert", &endpoint, &home);
    wait_until(WAITING, || err.lock().unwrap().contains(WAITING));
    let blobs = home.join("hub/models--org--other-bert/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let incomplete = blobs.join(format!("{etag}.incomplete"));
    std::fs::write(&incomplete, &weights).unwrap();
    std::fs::rename(&incomplete, blobs.join(&etag)).unwrap();
    drop(python);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", err.lock().unwrap());
    assert_eq!(out.stdout, reports[0]);
    assert_eq!(
        body_requests("org/other-bert"),
        0,
        "{:#?}",
        server.requests()
    );
    let link = home
        .join("hub/models--org--other-bert/snapshots")
        .join(commit(&root, "org/other-bert", "main"))
        .join("model.safetensors");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        PathBuf::from(format!("../../blobs/{etag}"))
    );
    for d in [root, work, home] {
        std::fs::remove_dir_all(d).ok();
    }
}
