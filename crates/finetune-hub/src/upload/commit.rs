//! The one commit of a push (`POST /api/models/{repo}/commit/{revision}`, `?create_pr=1` for a
//! pull request), in the NDJSON the Hub reads: a header line
//! `{"key":"header","value":{"summary","description"}}`, then one line per file —
//! `{"key":"file","value":{"content","path","encoding":"base64"}}` for a regular file and
//! `{"key":"lfsFile","value":{"path","algo":"sha256","oid","size"}}` for one uploaded to LFS.

use super::client::{encode_segment, from_ureq, read_json, Auth, Client, Failure};
use super::folder::LocalFile;
use super::preupload::Mode;
use super::Push;
use crate::error::Error;
use base64::Engine;
use serde_json::{json, Value};

/// What the Hub answered to the commit.
pub(crate) struct CommitAnswer {
    pub(crate) commit_url: Option<String>,
    pub(crate) pull_request_url: Option<String>,
}

/// Commits `files` (each in its `modes` entry) as `push` says.
pub(crate) fn commit(
    client: &Client,
    repo_id: &str,
    push: &Push,
    files: &[LocalFile],
    modes: &[Mode],
) -> Result<CommitAnswer, Failure> {
    let body = ndjson(push.commit_message, files, modes)?;
    let mut url = client.url(&format!(
        "/api/models/{repo_id}/commit/{}",
        encode_segment(push.revision)
    ));
    if push.create_pr {
        url.push_str("?create_pr=1");
    }
    let resp = client
        .request("POST", &url, Auth::Token)
        .set("Content-Type", "application/x-ndjson")
        .send_bytes(&body)
        .map_err(from_ureq)?;
    let answer = read_json(resp)?;
    let text = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(CommitAnswer {
        commit_url: text("commitUrl"),
        pull_request_url: text("pullRequestUrl"),
    })
}

/// The commit's body: the header line, then a line per file.
fn ndjson(summary: &str, files: &[LocalFile], modes: &[Mode]) -> Result<Vec<u8>, Failure> {
    let header = json!({"key": "header", "value": {"summary": summary, "description": ""}});
    let mut out = header.to_string().into_bytes();
    for (f, mode) in files.iter().zip(modes) {
        let line = match mode {
            Mode::Ignored => continue,
            Mode::Regular => {
                let bytes =
                    std::fs::read(&f.path).map_err(|e| Failure::Local(Error::io(&f.path, e)))?;
                let content = base64::engine::general_purpose::STANDARD.encode(bytes);
                json!({"key": "file", "value": {
                    "content": content, "path": f.path_in_repo, "encoding": "base64",
                }})
            }
            Mode::Lfs => json!({"key": "lfsFile", "value": {
                "path": f.path_in_repo, "algo": "sha256", "oid": f.sha256, "size": f.size,
            }}),
        };
        out.push(b'\n');
        out.extend(line.to_string().into_bytes());
    }
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_header_line_then_one_line_per_file() {
        let dir = std::env::temp_dir().join(format!("ft-push-ndjson-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "{\"a\":1}").unwrap();
        let file = |name: &str, size| LocalFile {
            path_in_repo: name.into(),
            path: dir.join(name),
            size,
            sha256: "ab".repeat(32),
            sample: Vec::new(),
        };
        let files = [
            file("config.json", 7),
            file("model.safetensors", 99),
            file("x.log", 1),
        ];
        let modes = [Mode::Regular, Mode::Lfs, Mode::Ignored];
        let body = ndjson("Upload", &files, &modes).unwrap();
        let lines: Vec<Value> = String::from_utf8(body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["key"], "header");
        assert_eq!(lines[0]["value"]["summary"], "Upload");
        assert_eq!(lines[1]["key"], "file");
        let content = lines[1]["value"]["content"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(content)
            .unwrap();
        assert_eq!(decoded, b"{\"a\":1}");
        assert_eq!(lines[2]["key"], "lfsFile");
        assert_eq!(lines[2]["value"]["oid"], "ab".repeat(32));
        assert_eq!(lines[2]["value"]["size"], 99);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
