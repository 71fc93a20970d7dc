//! The HTTP side of a push, on ureq (the client hf-hub already uses): one agent; the token on
//! requests to the Hub's own endpoints, never on the storage URLs an LFS answer hands out; and
//! failures sorted by what the user can do about them.

use crate::config::{HubConfig, Token};
use crate::error::Error;
use serde_json::Value;
use std::io::Read;
use std::time::Duration;

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No connection at all (refused, DNS, TLS).
    Unreachable(String),
    /// The connection broke off after the request started.
    Broken(String),
    /// An HTTP error status, with the Hub's own message (its JSON `error`, or the body's first
    /// line) when it gave one.
    Status { status: u16, message: String },
    /// An answer that is not what the Hub sends.
    Invalid(String),
    /// A local file could not be read (already worded).
    Local(Error),
}

/// Longest server message kept in an error line.
const MESSAGE_CHARS: usize = 200;

/// Whether a request carries the token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// The Hub's own endpoints.
    Token,
    /// Storage URLs handed out by the LFS batch answer (pre-signed).
    None,
}

pub(crate) struct Client {
    agent: ureq::Agent,
    endpoint: String,
    token: Token,
    /// How often an upload that broke off or met a 5xx is tried again.
    pub(crate) retries: usize,
}

impl Client {
    pub(crate) fn new(cfg: &HubConfig, token: &Token) -> Self {
        let agent = ureq::AgentBuilder::new()
            .try_proxy_from_env(true)
            // The Hub redirects a renamed repository's API calls; the token follows on the
            // same host only.
            .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(300))
            .timeout_write(Duration::from_secs(300))
            .user_agent(&format!("candle-finetune/{}", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent,
            endpoint: cfg.endpoint.trim_end_matches('/').to_string(),
            token: token.clone(),
            retries: cfg.retries,
        }
    }

    /// `{endpoint}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    /// A request with the headers every request carries.
    pub(crate) fn request(&self, method: &str, url: &str, auth: Auth) -> ureq::Request {
        let req = self.agent.request(method, url);
        match auth {
            Auth::Token => req.set("Authorization", &format!("Bearer {}", self.token.expose())),
            Auth::None => req,
        }
    }

    /// GET `url` (a Hub endpoint); its JSON answer.
    pub(crate) fn get_json(&self, url: &str) -> Result<Value, Failure> {
        let resp = self
            .request("GET", url, Auth::Token)
            .call()
            .map_err(from_ureq)?;
        read_json(resp)
    }

    /// POST `body` as JSON of `content_type` to `url`; the JSON answer (`null` when empty).
    pub(crate) fn post_json(
        &self,
        url: &str,
        content_type: &str,
        body: &Value,
        auth: Auth,
    ) -> Result<Value, Failure> {
        let resp = self
            .request("POST", url, auth)
            .set("Content-Type", content_type)
            .set("Accept", content_type)
            .send_bytes(body.to_string().as_bytes())
            .map_err(from_ureq)?;
        read_json(resp)
    }
}

impl Failure {
    /// Whether trying the same request again may succeed: the connection failed or broke off,
    /// or the server failed (5xx).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Failure::Unreachable(_) | Failure::Broken(_) => true,
            Failure::Status { status, .. } => *status >= 500,
            Failure::Invalid(_) | Failure::Local(_) => false,
        }
    }
}

/// The JSON body of a successful answer; an empty body is `null`.
pub(crate) fn read_json(resp: ureq::Response) -> Result<Value, Failure> {
    let mut text = String::new();
    resp.into_reader()
        .take(64 << 20)
        .read_to_string(&mut text)
        .map_err(|e| Failure::Broken(e.to_string()))?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| Failure::Invalid(format!("not JSON ({e})")))
}

/// A ureq error sorted into a [`Failure`].
pub(crate) fn from_ureq(e: ureq::Error) -> Failure {
    match e {
        ureq::Error::Status(status, resp) => Failure::Status {
            status,
            message: server_message(resp),
        },
        ureq::Error::Transport(t) => match t.kind() {
            ureq::ErrorKind::Dns => Failure::Unreachable("its host name does not resolve".into()),
            ureq::ErrorKind::ConnectionFailed => {
                Failure::Unreachable("the connection was refused".into())
            }
            ureq::ErrorKind::Io => Failure::Broken(reason(&t)),
            _ => Failure::Unreachable(reason(&t)),
        },
    }
}

/// What went wrong with the transport, without its URL (a storage URL carries a signature).
fn reason(t: &ureq::Transport) -> String {
    let cause = std::error::Error::source(t).map(|e| e.to_string());
    match (t.message(), cause) {
        (Some(m), Some(c)) => format!("{}: {m}: {c}", t.kind()),
        (Some(m), None) => format!("{}: {m}", t.kind()),
        (None, Some(c)) => format!("{}: {c}", t.kind()),
        (None, None) => t.kind().to_string(),
    }
}

/// The Hub's message in an error answer: its JSON `error` (or `message`), else the body's
/// first line; cut to [`MESSAGE_CHARS`].
fn server_message(resp: ureq::Response) -> String {
    let mut text = String::new();
    let _ = resp.into_reader().take(64 << 10).read_to_string(&mut text);
    let from_json = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
        ["error", "message"]
            .iter()
            .find_map(|k| v.get(k).and_then(Value::as_str).map(str::to_string))
    });
    let msg = from_json.unwrap_or_else(|| text.lines().next().unwrap_or("").to_string());
    let msg = msg.trim();
    match msg.char_indices().nth(MESSAGE_CHARS) {
        Some((i, _)) => format!("{}…", &msg[..i]),
        None => msg.to_string(),
    }
}

/// `s` as one URL path segment: every byte but `A-Za-z0-9-._~` percent-encoded (a branch
/// `refs/pr/1` becomes `refs%2Fpr%2F1`, as `huggingface_hub` sends it).
pub(crate) fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::encode_segment;

    #[test]
    fn a_revision_is_one_path_segment() {
        assert_eq!(encode_segment("main"), "main");
        assert_eq!(encode_segment("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode_segment("v1.0_a-b~"), "v1.0_a-b~");
        assert_eq!(encode_segment("a b"), "a%20b");
    }
}
