//! The repository and branch a push commits to, created when missing, as `huggingface_hub`'s
//! `create_repo(exist_ok=True)` and `create_branch(exist_ok=True)` do: an answer 409 (it
//! exists) is success. A bare `name` is put in the token owner's namespace, asked of
//! `GET /api/whoami-v2`.

use super::client::{encode_segment, Auth, Client, Failure};
use super::repo_name::RepoName;
use serde_json::{json, Value};

/// The full id (`namespace/name`) of `repo`.
pub(crate) fn qualify(client: &Client, repo: &RepoName) -> Result<String, Failure> {
    if let Some(ns) = &repo.namespace {
        return Ok(format!("{ns}/{}", repo.name));
    }
    let me = client.get_json(&client.url("/api/whoami-v2"))?;
    let user = me
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Failure::Invalid("the whoami answer names no user".into()))?;
    Ok(format!("{user}/{}", repo.name))
}

/// Creates the model repository `repo_id` unless it exists; whether it was created. `private`
/// applies to a new repository only (left out, the Hub's default visibility).
pub(crate) fn ensure_repo(client: &Client, repo_id: &str, private: bool) -> Result<bool, Failure> {
    let (namespace, name) = repo_id.split_once('/').unwrap_or(("", repo_id));
    let mut body = json!({ "name": name, "organization": namespace });
    if private {
        body["private"] = Value::Bool(true);
    }
    let url = client.url("/api/repos/create");
    match client.post_json(&url, "application/json", &body, Auth::Token) {
        Ok(_) => Ok(true),
        Err(Failure::Status { status: 409, .. }) => Ok(false),
        Err(f) => Err(f),
    }
}

/// Creates `branch` of `repo_id` from its default branch unless it exists.
pub(crate) fn ensure_branch(client: &Client, repo_id: &str, branch: &str) -> Result<(), Failure> {
    let url = client.url(&format!(
        "/api/models/{repo_id}/branch/{}",
        encode_segment(branch)
    ));
    match client.post_json(&url, "application/json", &json!({}), Auth::Token) {
        Ok(_) | Err(Failure::Status { status: 409, .. }) => Ok(()),
        Err(f) => Err(f),
    }
}
