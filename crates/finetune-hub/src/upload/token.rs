//! The token a push sends, found where `huggingface_hub` looks: the one given explicitly
//! (`--token`), else `HF_TOKEN` (legacy `HUGGING_FACE_HUB_TOKEN`), else the file `huggingface-cli
//! login` writes (`$HF_TOKEN_PATH`, else `$HF_HOME/token`) — the last two as
//! [`HubConfig::from_env`] reads them. Downloads work without a token; a push never does.

use crate::config::{HubConfig, Token};
use crate::error::{Error, Result};

/// The token for pushing to `repo`: `explicit` when given, else the configuration's. A missing
/// or blank token is an [`Error::Push`] saying where to put one (`flag`: how the caller takes
/// an explicit token, such as `--token`); the token itself is never part of a message.
pub fn push_token(
    explicit: Option<&str>,
    cfg: &HubConfig,
    repo: &str,
    flag: &str,
) -> Result<Token> {
    let missing = |msg: String| Error::Push {
        repo: repo.to_string(),
        msg,
    };
    match explicit {
        Some(t) => {
            Token::new(t).ok_or_else(|| missing(format!("the token given with {flag} is empty")))
        }
        None => cfg.token.clone().ok_or_else(|| {
            missing(format!(
                "pushing needs a Hub token with write access and none was found: give {flag}, \
                 set HF_TOKEN, or log in with `huggingface-cli login` (which writes \
                 $HF_HOME/token)"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_then_the_configuration_then_an_error() {
        let mut cfg = HubConfig::new("/unused");
        cfg.token = Token::new("hf_from_env");
        let t = push_token(Some("hf_given"), &cfg, "org/x", "--token").unwrap();
        assert_eq!(t.expose(), "hf_given");
        assert_eq!(
            push_token(None, &cfg, "org/x", "--token").unwrap().expose(),
            "hf_from_env"
        );
        cfg.token = None;
        let e = push_token(None, &cfg, "org/x", "--token")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("org/x: pushing needs a Hub token"), "{e}");
        assert!(e.contains("HF_TOKEN") && e.contains("--token"), "{e}");
        let e = push_token(Some("  "), &cfg, "org/x", "--hub-token")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--hub-token is empty"), "{e}");
    }
}
