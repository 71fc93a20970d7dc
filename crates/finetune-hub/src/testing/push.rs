//! The write side of the loopback Hub: the endpoints a push calls, checked as the Hub checks
//! them, and committed files written into the served tree (so a pushed model downloads back).
//!
//! - `GET /api/whoami-v2`: `{"name"}` of the token's user;
//! - `POST /api/repos/create` (`{"name", "organization", "private"}`): 409 when it exists;
//! - `POST /api/models/{repo}/branch/{branch}`: a copy of `main`; 409 when it exists;
//! - `POST /api/models/{repo}/preupload/{rev}`: `uploadMode` `lfs` for the extensions the Hub
//!   stores in LFS and for binary samples, else `regular`; `sha`, `size` and `sample` checked;
//! - `POST /{repo}.git/info/lfs/objects/batch`: per object nothing (held already) or an
//!   `upload` action (basic, or multipart above [`HubServer::multipart_above`]) on the
//!   `/lfs/…` storage routes, which refuse a token and check the uploaded bytes' sha256, and a
//!   `verify` action (`POST /{repo}.git/info/lfs/objects/verify`);
//! - `POST /api/models/{repo}/commit/{rev}` (NDJSON): the header line first, regular files in
//!   base64, LFS files only when their object was uploaded with that size; `?create_pr=1`
//!   commits to `refs/pr/N`.
//!
//! A push endpoint answers 401 without a token given to [`HubServer::add_writer`], and 403 when
//! the repository is outside that token's namespaces.

use super::{put, revision_dir, sha256_hex, Answer, Fault, HubServer, Request, Shared, NO_ANSWER};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A step of a push, for injecting faults into one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushStep {
    /// `GET /api/whoami-v2`.
    Whoami,
    /// `POST /api/repos/create`.
    Create,
    /// `POST /api/models/{repo}/branch/{branch}`.
    Branch,
    /// `POST /api/models/{repo}/preupload/{rev}`.
    Preupload,
    /// `POST /{repo}.git/info/lfs/objects/batch`.
    Batch,
    /// A basic-transfer `PUT` or a multipart part `PUT` to the storage routes.
    Upload,
    /// The multipart completion `POST`.
    Complete,
    /// The `verify` action's `POST`.
    Verify,
    /// `POST /api/models/{repo}/commit/{rev}`.
    Commit,
}

/// A commit the server made.
#[derive(Debug, Clone)]
pub struct Commit {
    /// `org/name`.
    pub repo: String,
    /// The branch written (`refs/pr/N` for a pull request).
    pub revision: String,
    /// The header line's `summary`.
    pub summary: String,
    /// Every file of the commit with its bytes (LFS files resolved from their objects).
    pub files: BTreeMap<String, Vec<u8>>,
    /// The files sent as `lfsFile` lines.
    pub lfs_files: Vec<String>,
}

#[derive(Default)]
pub(super) struct PushState {
    writers: HashMap<String, (String, Vec<String>)>,
    private: HashMap<String, bool>,
    lfs: HashMap<String, Vec<u8>>,
    parts: HashMap<(String, u64), Vec<u8>>,
    /// Each fault with how many more requests it hits (`None`: all of them).
    faults: HashMap<PushStep, (Fault, Option<usize>)>,
    multipart_chunk: Option<u64>,
    ignored: HashSet<String>,
    commits: Vec<Commit>,
}

impl HubServer {
    /// Lets `token` push as `user` to repositories under `namespaces` (and answer whoami).
    pub fn add_writer(&self, token: &str, user: &str, namespaces: &[&str]) {
        let ns = namespaces.iter().map(|n| n.to_string()).collect();
        let mut st = self.shared.state.lock().unwrap();
        st.push.writers.insert(token.into(), (user.into(), ns));
    }

    /// Answers every request of `step` with `fault` (`Fault::Status`, or `Fault::DropMidBody`
    /// for a connection closed without an answer).
    pub fn inject_push(&self, step: PushStep, fault: Fault) {
        let mut st = self.shared.state.lock().unwrap();
        st.push.faults.insert(step, (fault, None));
    }

    /// Like [`HubServer::inject_push`] for the next request of `step` only.
    pub fn inject_push_once(&self, step: PushStep, fault: Fault) {
        let mut st = self.shared.state.lock().unwrap();
        st.push.faults.insert(step, (fault, Some(1)));
    }

    /// LFS objects larger than `chunk` bytes are asked for in parts of `chunk` bytes.
    pub fn multipart_above(&self, chunk: u64) {
        self.shared.state.lock().unwrap().push.multipart_chunk = Some(chunk);
    }

    /// Answers `shouldIgnore: true` for `path` in preupload (as for a file the repository's
    /// `.gitignore` names).
    pub fn ignore_path(&self, path: &str) {
        self.shared
            .state
            .lock()
            .unwrap()
            .push
            .ignored
            .insert(path.into());
    }

    /// Every commit made, in order.
    pub fn commits(&self) -> Vec<Commit> {
        self.shared.state.lock().unwrap().push.commits.clone()
    }

    /// The LFS object stored under `oid` (hex sha256).
    pub fn lfs_object(&self, oid: &str) -> Option<Vec<u8>> {
        self.shared.state.lock().unwrap().push.lfs.get(oid).cloned()
    }

    /// Whether `repo` was created private (`None`: not created through the API).
    pub fn is_private(&self, repo: &str) -> Option<bool> {
        self.shared
            .state
            .lock()
            .unwrap()
            .push
            .private
            .get(repo)
            .copied()
    }
}

/// The answer to a push request, or `None` for a request of the read side.
pub(super) fn route(s: &Shared, req: &Request) -> Option<Answer> {
    let path = req.path.trim_start_matches('/');
    let step = step_of(&req.method, path)?;
    let mut st = s.state.lock().unwrap();
    if let Some(fault) = take_fault(&mut st.push, step) {
        return Some(match fault {
            Fault::Status(code) => Answer::error(code, "Injected"),
            _ => Answer::new(NO_ANSWER),
        });
    }
    let storage = matches!(step, PushStep::Upload | PushStep::Complete);
    if storage {
        if req.authorization.is_some() {
            return Some(Answer::error(400, "TokenSentToStorage"));
        }
        return Some(storage_route(&mut st.push, path, &req.body));
    }
    let Some((user, namespaces)) = writer(&st.push, req) else {
        return Some(Answer::error(401, "InvalidToken"));
    };
    if step == PushStep::Whoami {
        return Some(json_answer(json!({ "name": user })));
    }
    let body: Value = match (step, serde_json::from_slice(&req.body)) {
        (PushStep::Commit, _) => Value::Null,
        (_, Ok(v)) => v,
        (_, Err(_)) => return Some(Answer::error(400, "BadJson")),
    };
    let repo = match step {
        PushStep::Create => {
            let org = body["organization"].as_str().filter(|o| !o.is_empty());
            format!(
                "{}/{}",
                org.unwrap_or(&user),
                body["name"].as_str().unwrap_or("")
            )
        }
        PushStep::Batch | PushStep::Verify => lfs_repo(path),
        _ => api_repo(path),
    };
    if !namespaces
        .iter()
        .any(|n| repo.starts_with(&format!("{n}/")))
    {
        return Some(Answer::error(403, "Forbidden"));
    }
    if step != PushStep::Create && !s.root.join(&repo).is_dir() {
        return Some(Answer::error(404, "RepoNotFound"));
    }
    let endpoint = format!("http://{}", s.addr);
    Some(match step {
        PushStep::Create => create(s, &mut st.push, &repo, &body, &endpoint),
        PushStep::Branch => branch(s, &repo, path),
        PushStep::Preupload => preupload(&st.push, &body),
        PushStep::Batch => batch(&st.push, req, &body, &endpoint, &repo),
        PushStep::Verify => verify(&st.push, &body),
        _ => commit(s, &mut st.push, req, &repo, path, &endpoint),
    })
}

/// The fault injected for `step`, counted down when it hits a limited number of requests.
fn take_fault(st: &mut PushState, step: PushStep) -> Option<Fault> {
    let (fault, left) = st.faults.get_mut(&step)?;
    let fault = *fault;
    match left {
        Some(0) => return None,
        Some(n) => *n -= 1,
        None => {}
    }
    Some(fault)
}

fn step_of(method: &str, path: &str) -> Option<PushStep> {
    let api = |seg: &str| path.starts_with("api/models/") && path.contains(seg);
    Some(match method {
        "GET" if path == "api/whoami-v2" => PushStep::Whoami,
        "POST" if path == "api/repos/create" => PushStep::Create,
        "POST" if api("/branch/") => PushStep::Branch,
        "POST" if api("/preupload/") => PushStep::Preupload,
        "POST" if api("/commit/") => PushStep::Commit,
        "POST" if path.ends_with(".git/info/lfs/objects/batch") => PushStep::Batch,
        "POST" if path.ends_with(".git/info/lfs/objects/verify") => PushStep::Verify,
        "POST" if path.starts_with("lfs/complete/") => PushStep::Complete,
        "PUT" if path.starts_with("lfs/upload/") || path.starts_with("lfs/part/") => {
            PushStep::Upload
        }
        _ => return None,
    })
}

fn writer(st: &PushState, req: &Request) -> Option<(String, Vec<String>)> {
    let token = req.authorization.as_deref()?.strip_prefix("Bearer ")?;
    st.writers.get(token).cloned()
}

/// `org/name` of `api/models/org/name/{verb}/…`.
fn api_repo(path: &str) -> String {
    let rest = path.trim_start_matches("api/models/");
    rest.split('/').take(2).collect::<Vec<_>>().join("/")
}

/// `org/name` of `org/name.git/info/lfs/objects/batch`.
fn lfs_repo(path: &str) -> String {
    path.split(".git/").next().unwrap_or("").to_string()
}

/// The revision segment after `/{verb}/`, decoded, as the served tree names its folder.
fn revision_folder(path: &str, verb: &str) -> String {
    let seg = path.split(verb).nth(1).unwrap_or("");
    seg.replace("%2F", "/")
        .replace("%2f", "/")
        .replace('/', "%2F")
}

fn json_answer(v: Value) -> Answer {
    let mut a = Answer::new(200).header("Content-Type", "application/json");
    a.body = v.to_string().into_bytes();
    a
}

fn create(s: &Shared, st: &mut PushState, repo: &str, body: &Value, endpoint: &str) -> Answer {
    if s.root.join(repo).is_dir() {
        return Answer::error(409, "RepoExists");
    }
    std::fs::create_dir_all(revision_dir(&s.root, repo, "main")).unwrap();
    st.private
        .insert(repo.into(), body["private"].as_bool().unwrap_or(false));
    json_answer(json!({ "url": format!("{endpoint}/{repo}") }))
}

fn branch(s: &Shared, repo: &str, path: &str) -> Answer {
    let to = revision_dir(&s.root, repo, &revision_folder(path, "/branch/"));
    if to.is_dir() {
        return Answer::error(409, "BranchExists");
    }
    let from = revision_dir(&s.root, repo, "main");
    for f in super::files_under(&from) {
        let bytes = std::fs::read(from.join(&f)).unwrap();
        std::fs::create_dir_all(to.join(&f).parent().unwrap()).unwrap();
        std::fs::write(to.join(&f), bytes).unwrap();
    }
    std::fs::create_dir_all(&to).unwrap();
    json_answer(json!({}))
}

/// The Hub's choice between regular and LFS: LFS extensions and binary samples go to LFS.
fn preupload(st: &PushState, body: &Value) -> Answer {
    let Some(files) = body["files"].as_array() else {
        return Answer::error(400, "NoFiles");
    };
    let mut out = Vec::new();
    for f in files {
        let sample = f["sample"]
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
        let sha_ok = f["sha"].as_str().is_some_and(|h| h.len() == 64);
        let (Some(path), Some(sample), Some(_), true) =
            (f["path"].as_str(), sample, f["size"].as_u64(), sha_ok)
        else {
            return Answer::error(400, "BadFileEntry");
        };
        let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
        let lfs = super::LFS_EXTENSIONS.contains(&ext) || sample.contains(&0);
        let mode = if lfs { "lfs" } else { "regular" };
        let ignore = st.ignored.contains(path);
        out.push(json!({ "path": path, "uploadMode": mode, "shouldIgnore": ignore }));
    }
    json_answer(json!({ "files": out }))
}

fn batch(st: &PushState, req: &Request, body: &Value, endpoint: &str, repo: &str) -> Answer {
    let lfs_json = req.content_type.as_deref() == Some("application/vnd.git-lfs+json");
    if !lfs_json || body["operation"] != "upload" || body["hash_algo"] != "sha256" {
        return Answer::error(400, "BadBatch");
    }
    let objects: Vec<Value> = body["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let (oid, size) = (
                o["oid"].as_str().unwrap_or(""),
                o["size"].as_u64().unwrap_or(0),
            );
            if st.lfs.contains_key(oid) {
                return json!({ "oid": oid, "size": size });
            }
            let verify =
                json!({ "href": format!("{endpoint}/{repo}.git/info/lfs/objects/verify") });
            let upload = match st.multipart_chunk.filter(|c| size > *c) {
                Some(chunk) => {
                    let mut header = json!({ "chunk_size": chunk.to_string() });
                    for n in 1..=size.div_ceil(chunk) {
                        header[n.to_string()] = json!(format!("{endpoint}/lfs/part/{oid}/{n}"));
                    }
                    json!({ "href": format!("{endpoint}/lfs/complete/{oid}"), "header": header })
                }
                None => json!({ "href": format!("{endpoint}/lfs/upload/{oid}") }),
            };
            json!({ "oid": oid, "size": size, "actions": { "upload": upload, "verify": verify } })
        })
        .collect();
    json_answer(json!({ "transfer": "basic", "objects": objects }))
}

/// The storage routes: a whole object, a part, or the completion of a multipart upload.
fn storage_route(st: &mut PushState, path: &str, body: &[u8]) -> Answer {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["lfs", "upload", oid] => store(st, oid, body.to_vec()),
        ["lfs", "part", oid, n] => {
            let n: u64 = n.parse().unwrap_or(0);
            st.parts.insert((oid.to_string(), n), body.to_vec());
            Answer::new(200).header("ETag", format!("\"etag-{n}-{}\"", &sha256_hex(body)[..8]))
        }
        ["lfs", "complete", oid] => {
            let Ok(done) = serde_json::from_slice::<Value>(body) else {
                return Answer::error(400, "BadJson");
            };
            let mut bytes = Vec::new();
            for p in done["parts"].as_array().into_iter().flatten() {
                let n = p["partNumber"].as_u64().unwrap_or(0);
                let Some(part) = st.parts.get(&(oid.to_string(), n)) else {
                    return Answer::error(400, "MissingPart");
                };
                let etag = format!("\"etag-{n}-{}\"", &sha256_hex(part)[..8]);
                if p["etag"].as_str() != Some(etag.as_str()) {
                    return Answer::error(400, "BadEtag");
                }
                bytes.extend_from_slice(part);
            }
            store(st, oid, bytes)
        }
        _ => Answer::new(404),
    }
}

/// Keeps `bytes` as object `oid` if their sha256 is `oid`.
fn store(st: &mut PushState, oid: &str, bytes: Vec<u8>) -> Answer {
    if sha256_hex(&bytes) != oid {
        return Answer::error(400, "Sha256Mismatch");
    }
    st.lfs.insert(oid.to_string(), bytes);
    Answer::new(200)
}

fn verify(st: &PushState, body: &Value) -> Answer {
    let oid = body["oid"].as_str().unwrap_or("");
    match st.lfs.get(oid) {
        Some(b) if Some(b.len() as u64) == body["size"].as_u64() => json_answer(json!({})),
        _ => Answer::error(404, "ObjectNotFound"),
    }
}

fn commit(
    s: &Shared,
    st: &mut PushState,
    req: &Request,
    repo: &str,
    path: &str,
    endpoint: &str,
) -> Answer {
    if req.content_type.as_deref() != Some("application/x-ndjson") {
        return Answer::error(400, "NotNdjson");
    }
    let mut base = revision_folder(path, "/commit/");
    if !revision_dir(&s.root, repo, &base).is_dir() {
        return Answer::error(404, "RevisionNotFound");
    }
    let c = match parse_commit(st, repo, &req.body) {
        Ok(c) => c,
        Err(code) => return Answer::error(400, code),
    };
    let create_pr = req.query.as_deref() == Some("create_pr=1");
    if create_pr {
        let n = st
            .commits
            .iter()
            .filter(|c| c.revision.starts_with("refs/pr/"))
            .count()
            + 1;
        base = format!("refs%2Fpr%2F{n}");
    }
    for (file, bytes) in &c.files {
        put(&s.root, repo, &base.replace("%2F", "/"), file, bytes);
    }
    let oid = super::commit(&s.root, repo, &base.replace("%2F", "/"));
    let revision = base.replace("%2F", "/");
    st.commits.push(Commit {
        revision: revision.clone(),
        ..c
    });
    let mut answer =
        json!({ "commitOid": oid, "commitUrl": format!("{endpoint}/{repo}/commit/{oid}") });
    if create_pr {
        answer["pullRequestUrl"] =
            json!(format!("{endpoint}/{repo}/discussions/{}", &revision[8..]));
    }
    json_answer(answer)
}

/// The NDJSON lines of a commit, checked; `Err` names what the Hub would refuse.
fn parse_commit(st: &PushState, repo: &str, body: &[u8]) -> Result<Commit, &'static str> {
    let text = std::str::from_utf8(body).map_err(|_| "NotUtf8")?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Value =
        serde_json::from_str(lines.next().ok_or("Empty")?).map_err(|_| "BadJson")?;
    let summary = match (&header["key"], header["value"]["summary"].as_str()) {
        (Value::String(k), Some(s)) if k == "header" => s.to_string(),
        _ => return Err("HeaderFirst"),
    };
    let mut c = Commit {
        repo: repo.into(),
        revision: String::new(),
        summary,
        files: BTreeMap::new(),
        lfs_files: Vec::new(),
    };
    let mut seen = HashSet::new();
    for line in lines {
        let op: Value = serde_json::from_str(line).map_err(|_| "BadJson")?;
        let v = &op["value"];
        let path = v["path"].as_str().ok_or("NoPath")?.to_string();
        if !seen.insert(path.clone()) {
            return Err("DuplicatePath");
        }
        let bytes = match op["key"].as_str() {
            Some("file") if v["encoding"] == "base64" => base64::engine::general_purpose::STANDARD
                .decode(v["content"].as_str().ok_or("NoContent")?)
                .map_err(|_| "BadBase64")?,
            Some("lfsFile") if v["algo"] == "sha256" => {
                let obj = st
                    .lfs
                    .get(v["oid"].as_str().unwrap_or(""))
                    .ok_or("LfsObjectMissing")?;
                if v["size"].as_u64() != Some(obj.len() as u64) {
                    return Err("LfsSizeMismatch");
                }
                c.lfs_files.push(path.clone());
                obj.clone()
            }
            _ => return Err("UnknownOperation"),
        };
        c.files.insert(path, bytes);
    }
    Ok(c)
}
