//! Sharing a trained model on the Hub: with `push_to_hub` the final export — the output folder,
//! its checkpoints and hidden files left out — is pushed once training ends, in one commit
//! through [`finetune_hub::upload`]. Everything a push needs is checked before training (the
//! repository id, a token, not offline), so a long run never ends in a push refused for a
//! reason known at its start. [`tasks::train`](crate::tasks::train) itself never pushes: the
//! `finetune` binary (or a library caller) pushes its output with [`HubPush::push`].

use crate::settings::RunSettings;
use anyhow::{bail, Context, Result};
use finetune_hub::upload::{push_folder, Push, PushReport, RepoName};
use finetune_hub::{HubConfig, Token};
use std::path::Path;

/// The commit message of a push after training, transformers' own.
pub const END_OF_TRAINING: &str = "End of training";

/// A push a run's settings ask for, checked.
#[derive(Debug, Clone)]
pub struct HubPush {
    /// The repository.
    pub repo: RepoName,
    /// Create it private.
    pub private: bool,
    token: Token,
    cfg: HubConfig,
}

impl HubPush {
    /// The push `settings` ask for (`None` without `push_to_hub`), to `hub_model_id` (default:
    /// the output folder's name), with `token` when given (`--hub-token`), else the
    /// environment's (`HF_TOKEN`, the token file). A repository id that is not `name` or
    /// `org/name`, or no token, is an error naming the setting.
    pub fn from_settings(settings: &RunSettings, token: Option<&str>) -> Result<Option<Self>> {
        if !settings.hub.push_to_hub {
            return Ok(None);
        }
        let from_output = settings
            .job
            .output
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().to_string());
        let Some(id) = settings.hub.hub_model_id.clone().or(from_output) else {
            bail!("`push_to_hub` needs `hub_model_id` (the repository to push to)");
        };
        let repo = RepoName::parse(&id).context("`hub_model_id`")?;
        let cfg = HubConfig::from_env();
        let token = finetune_hub::upload::push_token(token, &cfg, &id, "--hub-token")?;
        Ok(Some(HubPush {
            repo,
            private: settings.hub.hub_private_repo,
            token,
            cfg,
        }))
    }

    /// Refuses offline mode (`HF_HUB_OFFLINE`), where the push at the end could not happen.
    pub fn check_online(&self) -> Result<()> {
        if self.cfg.offline {
            bail!(
                "{}: `push_to_hub` needs the network and HF_HUB_OFFLINE is set; unset it, or \
                 train without `push_to_hub` and push later with `finetune push`",
                self.repo
            );
        }
        Ok(())
    }

    /// Pushes `folder` (a run's output) to `main` in one commit titled `message`; `say` hears
    /// each step worth telling.
    pub fn push(
        &self,
        folder: &Path,
        message: &str,
        say: &mut dyn FnMut(&str),
    ) -> Result<PushReport> {
        let push = Push {
            folder,
            repo: &self.repo,
            token: &self.token,
            private: self.private,
            revision: "main",
            commit_message: message,
            create_pr: false,
        };
        Ok(push_folder(&push, &self.cfg, say)?)
    }
}
