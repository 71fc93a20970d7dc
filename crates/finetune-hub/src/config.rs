//! Where the cache is, which Hub to ask, whether to ask at all, and with which token: read from
//! the same environment variables as Python's `huggingface_hub`, so a model a user already
//! downloaded with Python is found here too.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `HF_HOME` | root of Hugging Face files | `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` |
//! | `HF_HUB_CACHE` (legacy `HUGGINGFACE_HUB_CACHE`) | the cache of repositories | `$HF_HOME/hub` |
//! | `HF_HUB_OFFLINE` | `1`/`true`/`yes`/`on`: never touch the network | off |
//! | `HF_ENDPOINT` | the Hub's base URL | `https://huggingface.co` |
//! | `HF_TOKEN` (legacy `HUGGING_FACE_HUB_TOKEN`) | access token for private/gated repos | file `$HF_TOKEN_PATH`, else `$HF_HOME/token` |

use std::fmt;
use std::path::PathBuf;

/// The Hub's base URL when `HF_ENDPOINT` is unset (as in `huggingface_hub`).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// An access token. Never printed: `Debug` shows `<redacted>` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// `None` for an empty or blank token.
    pub fn new(s: &str) -> Option<Token> {
        let s = s.trim();
        (!s.is_empty()).then(|| Token(s.to_string()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Everything resolution needs to know about the environment. Build it with [`HubConfig::from_env`]
/// in binaries; tests build it explicitly (or through [`HubConfig::from_lookup`]) so parallel
/// tests never mutate the process environment.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The cache of repositories (`$HF_HUB_CACHE`): holds `models--org--name/` folders.
    pub cache_dir: PathBuf,
    /// The Hub's base URL, without a trailing `/`.
    pub endpoint: String,
    /// Never touch the network; only the cache (and local paths) are used.
    pub offline: bool,
    /// The access token sent with every request (`HF_TOKEN` or the token file); `None` for
    /// anonymous access.
    pub token: Option<Token>,
    /// Draw progress bars (only ever drawn when stdout and stderr are terminals).
    pub progress: bool,
    /// How often hf-hub retries (resuming) a download that broke off, and a push an LFS upload
    /// that broke off or met a 5xx.
    pub retries: usize,
}

impl HubConfig {
    /// A configuration with this cache folder and the Hub's defaults for everything else.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        HubConfig {
            cache_dir: cache_dir.into(),
            endpoint: DEFAULT_ENDPOINT.to_string(),
            offline: false,
            token: None,
            progress: true,
            retries: 2,
        }
    }

    /// The configuration the process environment describes (the variables in the module
    /// docs), with progress bars on and 2 retries; reads the token file if no token variable is
    /// set. Never fails: unset or empty variables take their defaults.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`HubConfig::from_env`] with `get` standing in for the environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        let hf_home = var("HF_HOME").map(expand_tilde).unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .map(expand_tilde)
                .unwrap_or_else(|| home().join(".cache"))
                .join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(expand_tilde)
            .unwrap_or_else(|| hf_home.join("hub"));
        let endpoint = var("HF_ENDPOINT")
            .map(|e| e.trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| is_true(&v));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH")
                    .map(expand_tilde)
                    .unwrap_or_else(|| hf_home.join("token"));
                std::fs::read_to_string(path).ok()
            })
            .and_then(|t| Token::new(&t));
        HubConfig {
            cache_dir,
            endpoint,
            offline,
            token,
            ..HubConfig::new("")
        }
    }
}

/// Python's `_is_true`: `1`, `ON`, `YES`, `TRUE` in any case.
fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

fn home() -> PathBuf {
    dirs::home_dir().unwrap_or_else(|| PathBuf::from("."))
}

fn expand_tilde(p: String) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => home().join(rest),
        None if p == "~" => home(),
        None => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> HubConfig {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn env_vars_follow_huggingface_hub() {
        let c = cfg(&[("HF_HOME", "/h")]);
        assert_eq!(c.cache_dir, PathBuf::from("/h/hub"));
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert!(!c.offline);
        let c = cfg(&[("HF_HOME", "/h"), ("HF_HUB_CACHE", "/c")]);
        assert_eq!(c.cache_dir, PathBuf::from("/c"));
        let c = cfg(&[("XDG_CACHE_HOME", "/x")]);
        assert_eq!(c.cache_dir, PathBuf::from("/x/huggingface/hub"));
        let c = cfg(&[
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "1"),
        ]);
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert!(c.offline);
        assert!(cfg(&[("HF_HUB_OFFLINE", "yes")]).offline);
        assert!(!cfg(&[("HF_HUB_OFFLINE", "0")]).offline);
    }

    #[test]
    fn token_from_env_or_file_and_never_printed() {
        let dir = std::env::temp_dir().join(format!("ft-hub-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "hf_fromfile\n").unwrap();
        let home = dir.to_str().unwrap();
        let c = cfg(&[("HF_HOME", home)]);
        assert_eq!(c.token, Token::new("hf_fromfile"));
        let c = cfg(&[("HF_HOME", home), ("HF_TOKEN", "hf_secret_env")]);
        assert_eq!(c.token.as_ref().unwrap().expose(), "hf_secret_env");
        let printed = format!("{c:?}");
        assert!(!printed.contains("hf_secret_env"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
