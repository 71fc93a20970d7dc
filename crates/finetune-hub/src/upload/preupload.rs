//! Which files go to LFS storage: the Hub decides, from each file's path, size, sha256 and first
//! 512 bytes (`POST /api/models/{repo}/preupload/{revision}`, in chunks of 256 files, as
//! `huggingface_hub` asks), and which to leave out (`shouldIgnore`: the repository's
//! `.gitignore` names them). An empty file is always regular (LFS storage refuses empty
//! objects).

use super::client::{encode_segment, Auth, Client, Failure};
use super::folder::LocalFile;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;

/// How a file reaches the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Inline in the commit, base64.
    Regular,
    /// Uploaded through the LFS batch API, referred to by sha256 in the commit.
    Lfs,
    /// Left out: the repository ignores it.
    Ignored,
}

/// Files per preupload request.
const CHUNK: usize = 256;

/// The mode of each of `files`, in their order.
pub(crate) fn upload_modes(
    client: &Client,
    repo_id: &str,
    revision: &str,
    files: &[LocalFile],
    create_pr: bool,
) -> Result<Vec<Mode>, Failure> {
    let mut url = client.url(&format!(
        "/api/models/{repo_id}/preupload/{}",
        encode_segment(revision)
    ));
    if create_pr {
        url.push_str("?create_pr=1");
    }
    let mut modes: HashMap<String, Mode> = HashMap::new();
    for chunk in files.chunks(CHUNK) {
        let body = json!({ "files": chunk.iter().map(describe).collect::<Vec<_>>() });
        let answer = client.post_json(&url, "application/json", &body, Auth::Token)?;
        modes.extend(parse(&answer)?);
    }
    files
        .iter()
        .map(|f| match modes.get(&f.path_in_repo) {
            Some(Mode::Lfs) if f.size == 0 => Ok(Mode::Regular),
            Some(m) => Ok(*m),
            None => Err(Failure::Invalid(format!(
                "the preupload answer leaves out `{}`",
                f.path_in_repo
            ))),
        })
        .collect()
}

/// What the Hub is told about a file.
fn describe(f: &LocalFile) -> Value {
    json!({
        "path": f.path_in_repo,
        "sample": base64::engine::general_purpose::STANDARD.encode(&f.sample),
        "size": f.size,
        "sha": f.sha256,
    })
}

/// `{"files": [{"path", "uploadMode": "lfs"|"regular", "shouldIgnore"}, ...]}` into a map.
fn parse(answer: &Value) -> Result<Vec<(String, Mode)>, Failure> {
    let bad = || Failure::Invalid("the preupload answer has no `files` list of modes".into());
    let files = answer
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(bad)?;
    files
        .iter()
        .map(|f| {
            let path = f.get("path").and_then(Value::as_str).ok_or_else(bad)?;
            let ignored = f.get("shouldIgnore").and_then(Value::as_bool) == Some(true);
            let mode = match f.get("uploadMode").and_then(Value::as_str) {
                _ if ignored => Mode::Ignored,
                Some("lfs") => Mode::Lfs,
                Some("regular") => Mode::Regular,
                _ => return Err(bad()),
            };
            Ok((path.to_string(), mode))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_read_and_malformed_answers_refused() {
        let ok = json!({"files": [
            {"path": "a.json", "uploadMode": "regular", "shouldIgnore": false},
            {"path": "w.safetensors", "uploadMode": "lfs"},
            {"path": "x.log", "uploadMode": "regular", "shouldIgnore": true},
        ]});
        let got = parse(&ok).unwrap();
        assert_eq!(got[0], ("a.json".to_string(), Mode::Regular));
        assert_eq!(got[1], ("w.safetensors".to_string(), Mode::Lfs));
        assert_eq!(got[2], ("x.log".to_string(), Mode::Ignored));
        for bad in [
            json!({}),
            json!({"files": [{"path": "a"}]}),
            json!({"files": [{"path": "a", "uploadMode": "git"}]}),
        ] {
            assert!(matches!(parse(&bad), Err(Failure::Invalid(_))), "{bad}");
        }
    }
}
