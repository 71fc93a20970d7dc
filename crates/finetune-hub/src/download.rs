//! The network side, all through hf-hub's blocking API (`hf_hub::api::sync`, on ureq): the file
//! listing of a revision (`/api/{models,datasets}/{repo}/revision/{rev}`) and single-file
//! downloads (`{endpoint}/{repo}/resolve/{rev}/{file}`). hf-hub writes each download to
//! `blobs/{etag}.part`, renames it to `blobs/{etag}` when complete and links it from
//! `snapshots/{commit}/{file}`; an interrupted download leaves only the `.part`, which hf-hub
//! resumes next time. This module adds what hf-hub lacks: a checksum check after each download,
//! recovery from a `.part` it cannot resume, and failures sorted into kinds the caller can word.

use crate::blob_lock::BlobLock;
use crate::cache::RepoCache;
use crate::config::HubConfig;
use crate::error::{Error, Result};
use crate::integrity;
use crate::progress::{self, FileBar};
use crate::spec::{is_commit_hash, RepoId};
use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use std::fmt;
use std::path::PathBuf;

/// Why a request failed, sorted by what the caller does about it.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No answer at all (connection refused, DNS, TLS): fall back to the cache.
    Unreachable(String),
    /// An HTTP error status; `code` is the Hub's `X-Error-Code` (`RepoNotFound`, `EntryNotFound`, …).
    Status {
        status: u16,
        code: Option<String>,
        url: String,
    },
    /// The transfer broke off mid-body.
    Broken(String),
    /// A `blobs/*.part` left by an earlier run cannot be resumed (HTTP 416 / larger than the file).
    StalePartial,
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Unreachable(m) | Failure::Broken(m) | Failure::Other(m) => f.write_str(m),
            Failure::Status { status, url, .. } => write!(f, "HTTP {status} from {url}"),
            Failure::StalePartial => {
                f.write_str("a partial download in the cache could not be resumed")
            }
        }
    }
}

impl Failure {
    /// Whether resolution may go on with what the cache holds (as Python does on connection
    /// errors and server errors), rather than stop.
    pub(crate) fn falls_back_to_cache(&self) -> bool {
        match self {
            Failure::Unreachable(_) => true,
            Failure::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The user-facing error for this failure while fetching `file` (`None`: the listing).
    pub(crate) fn into_error(
        self,
        repo: &RepoId,
        file: Option<&str>,
        cfg: &HubConfig,
        cache: &RepoCache,
    ) -> Error {
        let label = repo.to_string();
        let what = file.unwrap_or("(file listing)").to_string();
        match self {
            Failure::Status { status: 404, code, url } => match (file, code.as_deref()) {
                (Some(f), Some("EntryNotFound") | None) => Error::FileNotFound {
                    repo: label,
                    file: f.to_string(),
                    url,
                },
                _ => Error::RepoNotFound {
                    repo: label,
                    endpoint: cfg.endpoint.clone(),
                    hint: "; check the name and the revision, or set HF_TOKEN if the repository is private",
                },
            },
            Failure::Status { status: status @ (401 | 403), .. } => Error::AccessDenied {
                repo: label,
                status,
                hint: if cfg.token.is_some() {
                    "the token in use (HF_TOKEN or the token file) has no access to it"
                } else {
                    "set HF_TOKEN (or run `huggingface-cli login`) with a token that has access"
                },
            },
            Failure::Status { status, url, .. } => Error::Server {
                repo: label,
                file: what,
                status,
                url,
            },
            Failure::Unreachable(msg) | Failure::Broken(msg) => Error::Transfer {
                repo: label,
                file: what,
                msg,
                cache: cache.blobs(),
            },
            f @ Failure::StalePartial => Error::Transfer {
                repo: label,
                file: what,
                msg: f.to_string(),
                cache: cache.blobs(),
            },
            Failure::Other(msg) => Error::repo(label, format!("`{what}`: {msg}")),
        }
    }
}

fn from_ureq(e: ureq::Error) -> Failure {
    match e {
        ureq::Error::Status(416, _) => Failure::StalePartial,
        ureq::Error::Status(status, resp) => Failure::Status {
            status,
            code: resp.header("x-error-code").map(str::to_string),
            url: resp.get_url().to_string(),
        },
        ureq::Error::Transport(t) => Failure::Unreachable(match t.kind() {
            ureq::ErrorKind::Dns => "its host name does not resolve: no network?".to_string(),
            ureq::ErrorKind::ConnectionFailed => "the connection was refused".to_string(),
            _ => t.to_string(),
        }),
    }
}

fn classify(e: ApiError) -> Failure {
    match e {
        ApiError::TooManyRetries(inner) => classify(*inner),
        ApiError::InvalidResume => Failure::StalePartial,
        ApiError::RequestError(e) => from_ureq(*e),
        ApiError::IoError(e) => {
            use std::io::ErrorKind::*;
            match e.kind() {
                UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe | TimedOut => {
                    Failure::Broken(format!("the connection broke off: {e}"))
                }
                _ => Failure::Other(e.to_string()),
            }
        }
        ApiError::MissingHeader(h) => Failure::Other(format!(
            "the server's answer lacks the `{h}` header a Hugging Face Hub sends (is HF_ENDPOINT a Hub?)"
        )),
        ApiError::LockAcquisition(p) => Failure::Other(format!(
            "another process is downloading this file (lock {})",
            p.display()
        )),
        other => Failure::Other(other.to_string()),
    }
}

/// hf-hub's client, set up from a [`HubConfig`] (endpoint, cache folder, token, retries).
pub(crate) struct Remote {
    api: Api,
    /// For the metadata probe, which must see the Hub's own answer (no redirects followed).
    probe: ureq::Agent,
    cfg: HubConfig,
    show_progress: bool,
}

impl Remote {
    pub(crate) fn new(cfg: &HubConfig) -> Result<Self> {
        let api = ApiBuilder::from_cache(hf_hub::Cache::new(cfg.cache_dir.clone()))
            .with_endpoint(cfg.endpoint.clone())
            .with_token(cfg.token.as_ref().map(|t| t.expose().to_string()))
            .with_retries(cfg.retries)
            .with_progress(false)
            .with_user_agent("candle-finetune", env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| Error::repo("hub client", e.to_string()))?;
        let probe = ureq::AgentBuilder::new()
            .try_proxy_from_env(true) // as hf-hub's own agents
            .redirects(0)
            .timeout_connect(std::time::Duration::from_secs(10))
            .timeout_read(std::time::Duration::from_secs(30))
            .user_agent(&format!("candle-finetune/{}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Remote {
            api,
            probe,
            cfg: cfg.clone(),
            show_progress: progress::enabled(cfg.progress),
        })
    }

    /// The commit `repo.revision` points to and every file in the repository at that commit.
    pub(crate) fn listing(
        &self,
        repo: &RepoId,
    ) -> std::result::Result<(String, Vec<String>), Failure> {
        let info = self.api.repo(repo.to_hf()).info().map_err(classify)?;
        if !is_commit_hash(&info.sha) {
            return Err(Failure::Other(format!(
                "the Hub's listing names commit `{}`, not a 40-digit hash",
                info.sha
            )));
        }
        let files = info.siblings.into_iter().map(|s| s.rfilename).collect();
        Ok((info.sha, files))
    }

    /// The blob (etag) and commit of `file` at `repo.revision`, as the Hub answers a ranged
    /// GET of the file: `X-Linked-Etag` (LFS) or `ETag`, and `X-Repo-Commit`, following only
    /// the Hub's own relative redirects (a renamed repository), as hf-hub and Python do.
    fn probe(&self, repo: &RepoId, file: &str) -> std::result::Result<(String, String), Failure> {
        let mut url = self.api.repo(repo.to_hf()).url(file);
        for _ in 0..5 {
            let mut req = self.probe.get(&url).set("Range", "bytes=0-0");
            if let Some(t) = &self.cfg.token {
                req = req.set("Authorization", &format!("Bearer {}", t.expose()));
            }
            let resp = req.call().map_err(from_ureq)?;
            let relative = resp
                .header("location")
                .filter(|l| l.starts_with('/') && (300..400).contains(&resp.status()));
            if let Some(location) = relative {
                url = format!("{}{location}", self.cfg.endpoint.trim_end_matches('/'));
                continue;
            }
            let header = |name: &str| resp.header(name).map(|v| v.replace('"', ""));
            let etag = header("x-linked-etag").or_else(|| header("etag"));
            return match (etag, header("x-repo-commit")) {
                (Some(etag), Some(commit)) => Ok((etag, commit)),
                (None, _) => Err(classify(ApiError::MissingHeader("etag"))),
                (_, None) => Err(classify(ApiError::MissingHeader("x-repo-commit"))),
            };
        }
        Err(Failure::Other(format!("too many redirects from {url}")))
    }

    /// Downloads `file` into the cache and checks it; returns its snapshot path. The blob's
    /// lock is held meanwhile (see [`crate::blob_lock`]): another process downloading the same
    /// blob is waited for, and its complete blob is linked instead of downloaded again.
    pub(crate) fn download(
        &self,
        repo: &RepoId,
        cache: &RepoCache,
        file: &str,
    ) -> std::result::Result<PathBuf, Error> {
        let fail = |f: Failure| f.into_error(repo, Some(file), &self.cfg, cache);
        let (etag, commit) = self.probe(repo, file).map_err(fail)?;
        let _lock = BlobLock::acquire(&self.cfg.cache_dir, repo, &etag, |lock| {
            eprintln!(
                "{repo}: waiting for another process downloading `{file}` (lock {})",
                lock.display()
            )
        })?;
        let path = if cache.blobs().join(&etag).is_file() {
            cache.link_blob(&commit, file, &etag)?
        } else {
            self.fetch_blob(repo, cache, file)?
        };
        integrity::verify(&path, &repo.to_string(), file)?;
        Ok(path)
    }

    /// hf-hub's download of `file` (blob, snapshot link, ref), retried once without the
    /// partial download when that cannot be resumed.
    fn fetch_blob(
        &self,
        repo: &RepoId,
        cache: &RepoCache,
        file: &str,
    ) -> std::result::Result<PathBuf, Error> {
        let get = || {
            let bar = FileBar::new(self.show_progress, format!("{}: {file}", repo.name));
            self.api
                .repo(repo.to_hf())
                .download_with_progress(file, bar)
                .map_err(classify)
        };
        let first = get();
        let result = match first {
            Err(Failure::StalePartial) => {
                cache.remove_partials();
                get()
            }
            other => other,
        };
        // Dropped or refused transfers leave at most `blobs/*.part`, never a snapshot entry.
        result.map_err(|f| f.into_error(repo, Some(file), &self.cfg, cache))
    }
}
