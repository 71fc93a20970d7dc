//! LFS uploads through the Git LFS batch API, as the Hub serves it
//! (`POST {endpoint}/{repo}.git/info/lfs/objects/batch`, `application/vnd.git-lfs+json`):
//! the batch answer gives, per object, nothing (the Hub holds it already), an error, or actions.
//! An `upload` action is a single PUT of the file (basic transfer) unless its `header` holds a
//! `chunk_size`: then the file goes in parts, each PUT to the URL under the part's number
//! (`"1"`, `"2"`, ...), and the parts' etags are POSTed to the action's `href` to complete it.
//! A `verify` action, when given, is POSTed `{oid, size}` afterwards. A PUT that breaks off or
//! meets a 5xx is tried again, [`HubConfig::retries`](crate::HubConfig::retries) times, after
//! 1 s, 2 s, ... (as `huggingface_hub` retries its uploads).

use super::client::{from_ureq, Auth, Client, Failure};
use super::folder::LocalFile;
use crate::error::Error;
use serde_json::{json, Map, Value};
use std::io::{Read, Seek, SeekFrom};

const LFS_JSON: &str = "application/vnd.git-lfs+json";

/// Objects per batch request.
const CHUNK: usize = 256;

/// Uploads `files` for a commit to `revision` of `repo_id`; the bytes sent. `say` hears of each
/// file as it starts. A failure names the file it happened on.
pub(crate) fn upload(
    client: &Client,
    repo_id: &str,
    revision: &str,
    files: &[&LocalFile],
    say: &mut dyn FnMut(&str),
) -> Result<u64, (String, Failure)> {
    let url = client.url(&format!("/{repo_id}.git/info/lfs/objects/batch"));
    let mut sent = 0;
    for chunk in files.chunks(CHUNK) {
        let body = json!({
            "operation": "upload",
            "transfers": ["basic", "multipart"],
            "objects": chunk.iter().map(|f| json!({"oid": f.sha256, "size": f.size})).collect::<Vec<_>>(),
            "hash_algo": "sha256",
            "ref": {"name": revision},
        });
        let first = || chunk[0].path_in_repo.clone();
        let answer = client
            .post_json(&url, LFS_JSON, &body, Auth::Token)
            .map_err(|f| (first(), f))?;
        let objects = answer
            .get("objects")
            .and_then(Value::as_array)
            .ok_or_else(|| (first(), invalid("the LFS batch answer has no `objects`")))?;
        for file in chunk {
            let named = |f| (file.path_in_repo.clone(), f);
            let object = objects
                .iter()
                .find(|o| o.get("oid").and_then(Value::as_str) == Some(file.sha256.as_str()))
                .ok_or_else(|| named(invalid("the LFS batch answer leaves the file out")))?;
            if transfer(client, file, object, say).map_err(named)? {
                sent += file.size;
            }
        }
    }
    Ok(sent)
}

fn invalid(msg: &str) -> Failure {
    Failure::Invalid(msg.to_string())
}

/// One object of the batch answer carried out; whether bytes were sent.
fn transfer(
    client: &Client,
    file: &LocalFile,
    object: &Value,
    say: &mut dyn FnMut(&str),
) -> Result<bool, Failure> {
    if let Some(err) = object.get("error") {
        let status = err.get("code").and_then(Value::as_u64).unwrap_or(422) as u16;
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("refused")
            .to_string();
        return Err(Failure::Status { status, message });
    }
    let Some(upload) = object.pointer("/actions/upload") else {
        return Ok(false); // the Hub holds this object already
    };
    say(&format!(
        "uploading {} ({})",
        file.path_in_repo,
        human_size(file.size)
    ));
    let href = action_href(upload)?;
    let header = upload.get("header").and_then(Value::as_object);
    match header.and_then(|h| Some((h, h.get("chunk_size")?))) {
        Some((header, chunk_size)) => multipart(client, file, href, header, chunk_size)?,
        None => {
            let extra = header.map(string_headers).unwrap_or_default();
            put_range(client, file, href, &extra, 0, file.size)?;
        }
    }
    if let Some(verify) = object.pointer("/actions/verify") {
        let body = json!({"oid": file.sha256, "size": file.size});
        client.post_json(action_href(verify)?, LFS_JSON, &body, Auth::Token)?;
    }
    Ok(true)
}

fn action_href(action: &Value) -> Result<&str, Failure> {
    action
        .get("href")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("an LFS action has no `href`"))
}

/// The string values of an action's `header`, as HTTP headers.
fn string_headers(header: &Map<String, Value>) -> Vec<(String, String)> {
    header
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

/// The multipart transfer: every part PUT to its URL, then the etags POSTed to `complete`.
fn multipart(
    client: &Client,
    file: &LocalFile,
    complete: &str,
    header: &Map<String, Value>,
    chunk_size: &Value,
) -> Result<(), Failure> {
    let chunk: u64 = match chunk_size {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .filter(|c| *c > 0)
    .ok_or_else(|| invalid("the LFS upload's `chunk_size` is not a positive number"))?;
    let mut parts: Vec<(u64, &str)> = header
        .iter()
        .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v.as_str()?)))
        .collect();
    parts.sort();
    let expected = file.size.div_ceil(chunk);
    let numbered = parts
        .iter()
        .enumerate()
        .all(|(i, (n, _))| *n == i as u64 + 1);
    if parts.len() as u64 != expected || !numbered {
        return Err(invalid(&format!(
            "the LFS upload asks for {} parts where {expected} of {chunk} bytes are needed",
            parts.len()
        )));
    }
    let mut etags = Vec::with_capacity(parts.len());
    for (n, url) in parts {
        let start = (n - 1) * chunk;
        let len = chunk.min(file.size - start);
        let resp = put_range(client, file, url, &[], start, len)?;
        let etag = resp
            .header("etag")
            .filter(|e| !e.is_empty())
            .ok_or_else(|| invalid(&format!("part {n} of the LFS upload got no etag")))?;
        etags.push(json!({"partNumber": n, "etag": etag}));
    }
    let body = json!({"oid": file.sha256, "parts": etags});
    client.post_json(complete, LFS_JSON, &body, Auth::None)?;
    Ok(())
}

/// [`put_once`], tried again on a transient failure.
fn put_range(
    client: &Client,
    file: &LocalFile,
    url: &str,
    headers: &[(String, String)],
    start: u64,
    len: u64,
) -> Result<ureq::Response, Failure> {
    let mut attempt = 0;
    loop {
        match put_once(client, file, url, headers, start, len) {
            Err(f) if f.is_transient() && attempt < client.retries => {
                std::thread::sleep(std::time::Duration::from_secs(1 << attempt.min(5)));
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// PUTs `len` bytes of `file` from `start` to `url` (a storage URL: no token).
fn put_once(
    client: &Client,
    file: &LocalFile,
    url: &str,
    headers: &[(String, String)],
    start: u64,
    len: u64,
) -> Result<ureq::Response, Failure> {
    let local = |e| Failure::Local(Error::io(&file.path, e));
    let mut f = std::fs::File::open(&file.path).map_err(local)?;
    f.seek(SeekFrom::Start(start)).map_err(local)?;
    let mut req = client.request("PUT", url, Auth::None);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = req
        .set("Content-Length", &len.to_string())
        .send(f.take(len))
        .map_err(from_ureq)?;
    Ok(resp)
}

/// `1.2 MB`-style sizes for progress lines.
fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
