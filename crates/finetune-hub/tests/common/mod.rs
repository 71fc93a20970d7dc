//! Helpers shared by this crate's integration tests: temp folders, a config pointing at a
//! loopback server, and small model fixtures.

#![allow(dead_code)]

use finetune_hub::testing::{put, HubServer};
use finetune_hub::HubConfig;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh empty folder, unique per call.
pub fn tmp(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "ft-hub-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Online, no retries, no bars, no token: the cache in `cache`, the Hub at `endpoint`.
pub fn cfg(cache: &Path, endpoint: &str) -> HubConfig {
    HubConfig {
        endpoint: endpoint.to_string(),
        progress: false,
        retries: 0,
        ..HubConfig::new(cache)
    }
}

/// A Hub folder and a server for it.
pub fn hub() -> (PathBuf, HubServer) {
    let root = tmp("hub");
    let server = HubServer::start(&root);
    (root, server)
}

pub fn weights_bytes(tag: &str) -> Vec<u8> {
    // Not a real safetensors file: this crate never reads weights, only moves them.
    (0..5000u32)
        .flat_map(|i| (i ^ tag.len() as u32).to_le_bytes())
        .chain(tag.bytes())
        .collect()
}

/// A BERT-like repo: config, tokenizer files, safetensors weights, a README and a pickle that
/// must not be fetched. `tag` varies the contents between revisions.
pub fn tiny_model(root: &Path, repo: &str, rev: &str, tag: &str) {
    put(
        root,
        repo,
        rev,
        "config.json",
        format!("{{\"tag\":\"{tag}\"}}").as_bytes(),
    );
    put(root, repo, rev, "tokenizer.json", b"{\"model\":{}}");
    put(root, repo, rev, "vocab.txt", b"[PAD]\n[UNK]\nhello\n");
    put(root, repo, rev, "model.safetensors", &weights_bytes(tag));
    put(
        root,
        repo,
        rev,
        "pytorch_model.bin",
        b"pickle bytes never fetched",
    );
    put(root, repo, rev, "README.md", b"# tiny");
}

/// Requests whose path contains `needle`.
pub fn count(server: &HubServer, needle: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.contains(needle))
        .count()
}
