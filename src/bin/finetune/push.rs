//! `finetune push`: a model folder to a Hub repository in one commit. A `--repo` that is not
//! `name` or `org/name`, a bad `--revision` and a missing token are usage errors.

use anyhow::Result;
use candle_finetune::hub::upload::{self, push_folder, Push, PushReport, RepoName};
use candle_finetune::hub::HubConfig;
use candle_finetune::usage::usage;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The folder to push: a training output (its checkpoints and hidden files stay home) or a
    /// `finetune export` folder.
    #[arg(long)]
    pub model: PathBuf,
    /// The repository: `org/name`, or `name` in the token owner's namespace; created when
    /// missing.
    #[arg(long)]
    pub repo: String,
    /// Create the repository private (an existing one keeps its visibility).
    #[arg(long)]
    pub private: bool,
    /// The branch to commit to (created from the default branch when missing).
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// The commit's title [default: "Upload FOLDER with candle-finetune"].
    #[arg(long)]
    pub commit_message: Option<String>,
    /// Open a pull request with the commit instead of committing to the branch.
    #[arg(long)]
    pub create_pr: bool,
    /// A token with write access (default: HF_TOKEN, else the token file of
    /// `huggingface-cli login`); never printed.
    #[arg(long)]
    pub token: Option<String>,
    /// Print the push's report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let repo = RepoName::parse(&a.repo).map_err(usage)?;
    upload::check_branch(&a.repo, &a.revision).map_err(usage)?;
    let cfg = HubConfig::from_env();
    let token = upload::push_token(a.token.as_deref(), &cfg, &a.repo, "--token").map_err(usage)?;
    let folder_name = a.model.file_name().unwrap_or(a.model.as_os_str());
    let message = a.commit_message.clone().unwrap_or_else(|| {
        format!(
            "Upload {} with candle-finetune",
            folder_name.to_string_lossy()
        )
    });
    let push = Push {
        folder: &a.model,
        repo: &repo,
        token: &token,
        private: a.private,
        revision: &a.revision,
        commit_message: &message,
        create_pr: a.create_pr,
    };
    let report = push_folder(&push, &cfg, &mut |line| eprintln!("{line}"))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        eprintln!("{}", summary(&report));
    }
    Ok(())
}

/// `pushed N files (M through LFS) to URL`, with the commit or pull request.
pub fn summary(r: &PushReport) -> String {
    let place = match (&r.pull_request_url, &r.commit_url) {
        (Some(pr), _) => format!(" as pull request {pr}"),
        (None, Some(c)) => format!(": {c}"),
        (None, None) => String::new(),
    };
    format!(
        "pushed {} files ({} through LFS) to {}@{}{place}",
        r.files.len(),
        r.lfs_files.len(),
        r.url,
        r.revision
    )
}
