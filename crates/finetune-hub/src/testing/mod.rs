//! A loopback Hugging Face Hub for tests (feature `testing`; never in a release build).
//!
//! It serves a folder laid out like the Hub's URLs — `{root}/{repo}/resolve/{revision}/{file}`,
//! with `repo` = `org/name` for models and `datasets/org/name` for datasets, and a `/` in a
//! revision written `%2F` — with the answers hf-hub reads:
//!
//! - `GET {repo}/resolve/{rev}/{file}`: regular files answer 200/206 with `ETag` (git-sha1),
//!   `X-Repo-Commit`, `Content-Range` for ranged requests; LFS files (weights, parquet) answer
//!   `302` with `X-Linked-Etag` (sha256), `X-Linked-Size`, `X-Repo-Commit` and an absolute
//!   `Location` on a `/cdn/…` route that serves the bytes, as the Hub does;
//! - `GET /api/{models,datasets}/{repo}/revision/{rev}`: `{"sha", "siblings": [{"rfilename"}]}`;
//! - 404s carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`).
//!
//! A revision's commit is a hash of its files, so editing a revision makes a new commit and a
//! revision can also be asked for by its commit. Every request is logged for counting; faults
//! can be injected per file; a repo can be made to demand a token.
//!
//! It also takes pushes (`push.rs`): the endpoints `huggingface_hub`'s `upload_folder` calls,
//! checked as the Hub checks them, with committed files written into the served tree.

mod push;

pub use push::{Commit, PushStep};

use sha1::{Digest, Sha1};
use sha2::Sha256;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Extensions stored in LFS on the Hub (answered with a redirect to the CDN route).
const LFS_EXTENSIONS: &[&str] = &[
    "safetensors",
    "bin",
    "parquet",
    "pt",
    "pth",
    "h5",
    "onnx",
    "msgpack",
];

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The HTTP method (`GET`, `HEAD`, …).
    pub method: String,
    /// The request target without its query string (`/api/models/org/name/revision/main`,
    /// `/org/name/resolve/main/config.json`, `/cdn/…`).
    pub path: String,
    /// The `Range` header (`bytes=a-` when hf-hub resumes), if sent.
    pub range: Option<String>,
    /// The `Authorization` header (`Bearer {token}`), if sent.
    pub authorization: Option<String>,
    /// The query string (after `?`), if any.
    pub query: Option<String>,
    /// The `Content-Type` header, if sent.
    pub content_type: Option<String>,
    /// The request body (`Content-Length` or chunked), empty when none.
    pub body: Vec<u8>,
}

/// A failure to inject for one file (matched on the repo-relative file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer every request for the file with this status.
    Status(u16),
    /// Send headers with the full `Content-Length`, half the body, then close the connection.
    DropMidBody,
    /// Send half the body without `Content-Length` and close: looks like a complete answer.
    TruncateWithoutLength,
    /// Send the right length with one byte flipped.
    CorruptByte,
}

#[derive(Default)]
struct State {
    log: Vec<Request>,
    faults: HashMap<String, Fault>,
    tokens: HashMap<String, String>,
    extra_listing: HashMap<String, Vec<String>>,
    push: push::PushState,
}

struct Shared {
    root: PathBuf,
    addr: SocketAddr,
    stop: AtomicBool,
    state: Mutex<State>,
}

/// The running server; stops when dropped.
pub struct HubServer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl HubServer {
    /// Serves `root` on a free loopback port.
    pub fn start(root: impl Into<PathBuf>) -> HubServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let shared = Arc::new(Shared {
            root: root.into(),
            addr: listener.local_addr().unwrap(),
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    let _ = handle(&s, stream);
                }
            }
        });
        HubServer {
            shared,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`: what `HF_ENDPOINT` should be.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// Every request served since the start or the last [`HubServer::clear_requests`], in
    /// arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().unwrap().log.clone()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.state.lock().unwrap().log.clear();
    }

    /// Injects `fault` for every request of the file named `file` (in any repo).
    pub fn inject(&self, file: &str, fault: Fault) {
        self.shared
            .state
            .lock()
            .unwrap()
            .faults
            .insert(file.to_string(), fault);
    }

    /// Removes every fault injected with [`HubServer::inject`].
    pub fn clear_faults(&self) {
        self.shared.state.lock().unwrap().faults.clear();
    }

    /// Makes `repo` (URL form: `org/name` or `datasets/org/name`) answer 401 without this token.
    pub fn require_token(&self, repo: &str, token: &str) {
        self.shared
            .state
            .lock()
            .unwrap()
            .tokens
            .insert(repo.to_string(), token.to_string());
    }

    /// Adds a name to `repo`'s API listing that is not a file (to test hostile listings).
    pub fn add_listing_entry(&self, repo: &str, name: &str) {
        let mut st = self.shared.state.lock().unwrap();
        st.extra_listing
            .entry(repo.to_string())
            .or_default()
            .push(name.to_string());
    }

    /// Stops serving; the port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shared.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.shared.addr); // wake the accept loop
            let _ = t.join();
        }
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `bytes` as `file` of `repo` (URL form) at `revision`.
pub fn put(root: &Path, repo: &str, revision: &str, file: &str, bytes: &[u8]) {
    let path = revision_dir(root, repo, &revision.replace('/', "%2F")).join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The commit the server reports for `revision` of `repo`.
pub fn commit(root: &Path, repo: &str, revision: &str) -> String {
    commit_of_dir(&revision_dir(root, repo, &revision.replace('/', "%2F")))
}

/// Hex sha256 of `bytes` (the etag of an LFS file).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Hex git blob sha1 of `bytes` (the etag of a regular file).
pub fn git_sha1_hex(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn revision_dir(root: &Path, repo: &str, rev_encoded: &str) -> PathBuf {
    root.join(repo).join("resolve").join(rev_encoded)
}

fn files_under(dir: &Path) -> Vec<String> {
    crate::cache::list_files(dir)
}

fn commit_of_dir(dir: &Path) -> String {
    let mut h = Sha1::new();
    for f in files_under(dir) {
        let bytes = std::fs::read(dir.join(&f)).unwrap_or_default();
        h.update(f.as_bytes());
        h.update([0]);
        h.update(bytes.len().to_le_bytes());
        h.update(&bytes);
    }
    hex(&h.finalize())
}

/// The folder of `rev` (a name, or a commit of one of the revisions).
fn find_revision(root: &Path, repo: &str, rev: &str) -> Option<(PathBuf, String)> {
    let dir = revision_dir(root, repo, rev);
    if dir.is_dir() {
        return Some((dir.clone(), commit_of_dir(&dir)));
    }
    let revs = std::fs::read_dir(root.join(repo).join("resolve")).ok()?;
    revs.flatten()
        .map(|e| e.path())
        .find(|p| commit_of_dir(p) == rev)
        .map(|p| (p, rev.to_string()))
}

/// The status of an [`Answer`] that is never sent: the connection is closed instead.
const NO_ANSWER: u16 = 0;

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    fault: Option<Fault>,
}

impl Answer {
    fn new(status: u16) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            fault: None,
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    fn error(status: u16, code: &str) -> Self {
        let mut a = Answer::new(status).header("X-Error-Code", code);
        a.body = format!("{{\"error\":\"{code}\"}}").into_bytes();
        a
    }
}

fn handle(s: &Shared, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.clone(), None),
    };
    let body = read_body(&mut reader, &headers)?;
    let req = Request {
        method: method.clone(),
        path,
        range: headers.get("range").cloned(),
        authorization: headers.get("authorization").cloned(),
        query,
        content_type: headers.get("content-type").cloned(),
        body,
    };
    s.state.lock().unwrap().log.push(req.clone());
    let answer = route(s, &req);
    write_answer(&mut stream, &method, answer, req.range.as_deref())
}

/// The body after the headers: `Content-Length` bytes, or a chunked body.
fn read_body(
    reader: &mut impl BufRead,
    headers: &HashMap<String, String>,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2]; // the chunk and its CRLF
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(body)
}

fn route(s: &Shared, req: &Request) -> Answer {
    if let Some(answer) = push::route(s, req) {
        return answer;
    }
    if req.method != "GET" && req.method != "HEAD" {
        return Answer::new(405);
    }
    let path = req.path.trim_start_matches('/');
    if path.split('/').any(|c| c == "..") {
        return Answer::new(400);
    }
    let st = s.state.lock().unwrap();
    let authorized = |repo: &str| match st.tokens.get(repo) {
        Some(t) => req.authorization.as_deref() == Some(&format!("Bearer {t}")),
        None => true,
    };
    if let Some(rest) = path.strip_prefix("api/") {
        let Some((kind_repo, rev)) = rest.split_once("/revision/") else {
            return Answer::new(404);
        };
        let repo = match kind_repo.split_once('/') {
            Some(("models", r)) => r.to_string(),
            Some(("datasets", r)) => format!("datasets/{r}"),
            _ => return Answer::new(404),
        };
        if !authorized(&repo) {
            return Answer::error(401, "RepoNotFound");
        }
        if !s.root.join(&repo).is_dir() {
            return Answer::error(404, "RepoNotFound");
        }
        let Some((dir, commit)) = find_revision(&s.root, &repo, rev) else {
            return Answer::error(404, "RevisionNotFound");
        };
        let mut names = files_under(&dir);
        names.extend(st.extra_listing.get(&repo).cloned().unwrap_or_default());
        let siblings: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({ "rfilename": n }))
            .collect();
        let body = serde_json::json!({ "id": repo, "sha": commit, "siblings": siblings });
        let mut a = Answer::new(200).header("Content-Type", "application/json");
        a.body = body.to_string().into_bytes();
        return a;
    }
    if let Some(rest) = path.strip_prefix("cdn/") {
        // cdn/{repo...}/{rev}/{file...} is not needed: the CDN route carries the blob's place.
        let Some((loc, file)) = rest.split_once("/-/") else {
            return Answer::new(404);
        };
        let blob = s.root.join(loc).join(file);
        let Ok(bytes) = std::fs::read(&blob) else {
            return Answer::new(404);
        };
        let mut a = Answer::new(200).header("ETag", format!("\"{}\"", sha256_hex(&bytes)));
        a.body = bytes;
        a.fault = st.faults.get(file).copied();
        return a;
    }
    let Some((repo, rest)) = path.split_once("/resolve/") else {
        return Answer::new(404);
    };
    let Some((rev, file)) = rest.split_once('/') else {
        return Answer::new(404);
    };
    if !authorized(repo) {
        return Answer::error(401, "RepoNotFound");
    }
    if let Some(Fault::Status(code)) = st.faults.get(file) {
        let code_name = if *code == 404 {
            "EntryNotFound"
        } else {
            "Injected"
        };
        return Answer::error(*code, code_name);
    }
    if !s.root.join(repo).is_dir() {
        return Answer::error(404, "RepoNotFound");
    }
    let Some((dir, commit)) = find_revision(&s.root, repo, rev) else {
        return Answer::error(404, "RevisionNotFound");
    };
    let Ok(bytes) = std::fs::read(dir.join(file)) else {
        return Answer::error(404, "EntryNotFound").header("X-Repo-Commit", commit);
    };
    let lfs = file
        .rsplit_once('.')
        .is_some_and(|(_, e)| LFS_EXTENSIONS.contains(&e));
    if lfs {
        let rel_dir = dir
            .strip_prefix(&s.root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let location = format!("http://{}/cdn/{rel_dir}/-/{file}", s.addr);
        return Answer::new(302)
            .header("X-Repo-Commit", commit)
            .header("X-Linked-Etag", format!("\"{}\"", sha256_hex(&bytes)))
            .header("X-Linked-Size", bytes.len().to_string())
            .header("Location", location);
    }
    let mut a = Answer::new(200)
        .header("X-Repo-Commit", commit)
        .header("ETag", format!("\"{}\"", git_sha1_hex(&bytes)));
    a.body = bytes;
    a.fault = st.faults.get(file).copied();
    a
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// `bytes=a-` / `bytes=a-b` → (a, b inclusive), clamped to the size.
fn parse_range(range: &str, size: usize) -> Option<(usize, usize)> {
    let spec = range.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let a: usize = a.parse().ok()?;
    let b: usize = if b.is_empty() {
        size.saturating_sub(1)
    } else {
        b.parse().ok()?
    };
    Some((a, b.min(size.saturating_sub(1))))
}

fn write_answer(
    stream: &mut TcpStream,
    method: &str,
    mut a: Answer,
    range: Option<&str>,
) -> std::io::Result<()> {
    let serves_content = a.status == 200 && a.headers.iter().any(|(k, _)| k == "ETag");
    if serves_content {
        let size = a.body.len();
        if let Some(r) = range {
            match parse_range(r, size) {
                Some((start, end)) if start < size => {
                    a.status = 206;
                    a.headers.push((
                        "Content-Range".into(),
                        format!("bytes {start}-{end}/{size}"),
                    ));
                    a.body = a.body[start..=end].to_vec();
                }
                _ => {
                    a = Answer::new(416).header("Content-Range", format!("bytes */{size}"));
                }
            }
        }
    }
    // The metadata probe (`Range: bytes=0-0`) is never faulted: faults hit the transfer itself.
    let fault = a.fault.filter(|_| range != Some("bytes=0-0"));
    if a.status == NO_ANSWER {
        return stream.shutdown(std::net::Shutdown::Both);
    }
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\n",
        a.status,
        reason(a.status)
    );
    for (k, v) in &a.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = match fault {
        Some(Fault::DropMidBody) => {
            head.push_str(&format!("Content-Length: {}\r\n", a.body.len()));
            a.body[..a.body.len() / 2].to_vec()
        }
        Some(Fault::TruncateWithoutLength) => a.body[..a.body.len() / 2].to_vec(),
        Some(Fault::CorruptByte) => {
            head.push_str(&format!("Content-Length: {}\r\n", a.body.len()));
            let mut b = a.body.clone();
            if let Some(x) = b.last_mut() {
                *x ^= 0xff;
            }
            b
        }
        _ => {
            head.push_str(&format!("Content-Length: {}\r\n", a.body.len()));
            a.body
        }
    };
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(&body)?;
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}
