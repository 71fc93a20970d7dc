//! Pushing a model folder to the Hub through its HTTP API, in the steps `huggingface_hub`'s
//! `upload_folder` takes:
//!
//! 1. the folder is checked ([`folder`]: it must hold a model) and every file hashed (sha256);
//! 2. the repository is created when missing (`POST /api/repos/create`; an existing one is
//!    fine), and so is the branch (`POST /api/models/{repo}/branch/{branch}`) when it is not
//!    `main` (`create.rs`);
//! 3. the Hub says which files go to LFS storage (`preupload.rs`:
//!    `POST /api/models/{repo}/preupload/{revision}`);
//! 4. those are uploaded through the Git LFS batch API (`lfs.rs`:
//!    `POST {endpoint}/{repo}.git/info/lfs/objects/batch`, basic or multipart transfer);
//! 5. one commit adds every file at once (`commit.rs`:
//!    `POST /api/models/{repo}/commit/{revision}`, NDJSON: a header line, then small files
//!    inline in base64 and LFS files by their sha256).
//!
//! The commit is the only step that changes the repository's files: a failure before it leaves
//! them as they were (a repository or branch created on the way stays; LFS objects no commit
//! refers to are the Hub's to discard).
//! The token ([`token`]) goes to the Hub's own endpoints only, never to the storage URLs the
//! LFS answer hands out, and is never printed.

mod client;
mod commit;
mod create;
pub mod folder;
mod lfs;
mod preupload;
pub mod repo_name;
pub mod token;

pub use folder::LocalFile;
pub use repo_name::{check_branch, RepoName};
pub use token::push_token;

use crate::config::{HubConfig, Token};
use crate::error::{Error, Result};
use client::{Client, Failure};
use preupload::Mode;
use serde::Serialize;
use std::path::Path;

/// What to push where.
#[derive(Debug, Clone)]
pub struct Push<'a> {
    /// The folder whose files become the repository's (see [`folder::collect`] for which).
    pub folder: &'a Path,
    /// The repository: `org/name`, or `name` in the token owner's namespace.
    pub repo: &'a RepoName,
    /// The access token; it needs write access to the repository.
    pub token: &'a Token,
    /// Create the repository private (an existing repository keeps its visibility).
    pub private: bool,
    /// The branch to commit to (created from `main` when missing).
    pub revision: &'a str,
    /// The commit's title.
    pub commit_message: &'a str,
    /// Open a pull request with the commit instead of committing to the branch.
    pub create_pr: bool,
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// The repository as the Hub names it (`org/name`).
    pub repo: String,
    /// The branch committed to (or the pull request's base).
    pub revision: String,
    /// The repository's page.
    pub url: String,
    /// The commit's page, as the Hub answered it.
    pub commit_url: Option<String>,
    /// The pull request's page with `--create-pr`.
    pub pull_request_url: Option<String>,
    /// Whether the repository was created by this push.
    pub created: bool,
    /// Every file committed, in repository paths.
    pub files: Vec<String>,
    /// Files the repository ignores (its `.gitignore`), left out of the commit.
    pub ignored: Vec<String>,
    /// The files stored in LFS (weights and other large or binary files).
    pub lfs_files: Vec<String>,
    /// Bytes uploaded through LFS (files the Hub already held are not sent again).
    pub lfs_bytes_sent: u64,
}

/// Pushes `push.folder` to `push.repo` in one commit (see the module docs); `say` receives a
/// line per step worth telling (creating the repository, each LFS upload). Refused in offline
/// mode. Every error is one [`Error::Push`] line naming the repository, or the folder when
/// that is at fault.
pub fn push_folder(push: &Push, cfg: &HubConfig, say: &mut dyn FnMut(&str)) -> Result<PushReport> {
    let shown = push.repo.to_string();
    if cfg.offline {
        return Err(Error::Push {
            repo: shown,
            msg: "HF_HUB_OFFLINE is set, and pushing needs the network; nothing was sent \
                  (unset HF_HUB_OFFLINE to push)"
                .into(),
        });
    }
    repo_name::check_branch(&shown, push.revision)?;
    let files = folder::collect(push.folder)?;
    let client = Client::new(cfg, push.token);
    let fail = |repo: &str, step: Step, f: Failure| failed(repo, step, f, cfg);
    let repo = create::qualify(&client, push.repo).map_err(|f| fail(&shown, Step::Whoami, f))?;
    let created = create::ensure_repo(&client, &repo, push.private)
        .map_err(|f| fail(&repo, Step::Create, f))?;
    if created {
        say(&format!("{repo}: created the repository on the Hub"));
    }
    if push.revision != "main" {
        create::ensure_branch(&client, &repo, push.revision)
            .map_err(|f| fail(&repo, Step::Branch, f))?;
    }
    let modes = preupload::upload_modes(&client, &repo, push.revision, &files, push.create_pr)
        .map_err(|f| fail(&repo, Step::Preupload, f))?;
    let lfs_files: Vec<&LocalFile> = files
        .iter()
        .zip(&modes)
        .filter(|(_, m)| **m == Mode::Lfs)
        .map(|(f, _)| f)
        .collect();
    let sent = lfs::upload(&client, &repo, push.revision, &lfs_files, say)
        .map_err(|(file, f)| fail(&repo, Step::Lfs(file), f))?;
    let answer = commit::commit(&client, &repo, push, &files, &modes)
        .map_err(|f| fail(&repo, Step::Commit, f))?;
    let paths = |keep: fn(&Mode) -> bool| -> Vec<String> {
        files
            .iter()
            .zip(&modes)
            .filter(|(_, m)| keep(m))
            .map(|(f, _)| f.path_in_repo.clone())
            .collect()
    };
    Ok(PushReport {
        url: format!("{}/{repo}", cfg.endpoint),
        repo,
        revision: push.revision.to_string(),
        commit_url: answer.commit_url,
        pull_request_url: answer.pull_request_url,
        created,
        files: paths(|m| *m != Mode::Ignored),
        ignored: paths(|m| *m == Mode::Ignored),
        lfs_files: lfs_files.iter().map(|f| f.path_in_repo.clone()).collect(),
        lfs_bytes_sent: sent,
    })
}

/// The step a request belonged to, for the error message.
enum Step {
    Whoami,
    Create,
    Branch,
    Preupload,
    Lfs(String),
    Commit,
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::Whoami => "asking the Hub whose token this is".into(),
            Step::Create => "creating the repository".into(),
            Step::Branch => "creating the branch".into(),
            Step::Preupload => "asking which files go to LFS".into(),
            Step::Lfs(file) => format!("uploading `{file}` to LFS storage"),
            Step::Commit => "committing".into(),
        }
    }
}

/// One line for a failed request: what happened at which step, and what to do.
fn failed(repo: &str, step: Step, f: Failure, cfg: &HubConfig) -> Error {
    const NONE: &str = "nothing was committed";
    let during = step.describe();
    let msg = match f {
        Failure::Unreachable(why) => format!(
            "the Hub at {} could not be reached while {during} ({why}); {NONE}: check the \
             network and HF_ENDPOINT",
            cfg.endpoint
        ),
        Failure::Broken(why) if matches!(step, Step::Commit) => format!(
            "the connection broke off while {during} ({why}): whether the commit was made is \
             unknown; look at the repository's history on the Hub before pushing again"
        ),
        Failure::Broken(why) => {
            format!("the connection broke off while {during} ({why}); {NONE}: push again")
        }
        Failure::Status { status, message } => {
            let said = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            let todo = match status {
                401 => "the token is invalid or expired: give a valid token with write access \
                        (--token, HF_TOKEN or `huggingface-cli login`)"
                    .to_string(),
                403 => "the token may not write to this repository: use a token with write \
                        access to it"
                    .to_string(),
                404 => "check the repository id and the revision, and that the token's owner \
                        can see the repository"
                    .to_string(),
                409 => "the branch changed while pushing, or the request conflicts with the \
                        repository's state: push again"
                    .to_string(),
                s if s >= 500 => "the Hub failed; try again later".to_string(),
                _ => "see the Hub's answer".to_string(),
            };
            format!("the Hub answered HTTP {status} while {during}{said}; {NONE}: {todo}")
        }
        Failure::Invalid(why) => format!(
            "unexpected answer from {} while {during}: {why} (is HF_ENDPOINT a Hub?); {NONE}",
            cfg.endpoint
        ),
        Failure::Local(e) => return e,
    };
    Error::Push {
        repo: repo.to_string(),
        msg,
    }
}
