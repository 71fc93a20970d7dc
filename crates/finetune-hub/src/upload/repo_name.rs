//! The repository a push goes to: `name` (in the token owner's namespace) or `org/name`, under
//! the Hub's rules for names. No `@revision`: the branch is a separate setting.

use crate::error::{Error, Result};
use std::fmt;

/// A repository id to push to, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoName {
    /// The user or organisation; `None` for the token owner's namespace.
    pub namespace: Option<String>,
    /// The repository's name.
    pub name: String,
}

impl RepoName {
    /// Parses `name` or `org/name`. Anything else (an `@revision`, more than one `/`, a
    /// character the Hub refuses) is an [`Error::Push`] saying which rule it broke.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: String| Error::Push {
            repo: s.to_string(),
            msg: format!("not a repository id ({why}); a push goes to `name` or `org/name`"),
        };
        if s.contains('@') {
            return Err(bad("a branch is given with --revision, not `@`".into()));
        }
        crate::spec::check_name(s).map_err(bad)?;
        Ok(match s.split_once('/') {
            Some((ns, name)) => RepoName {
                namespace: Some(ns.to_string()),
                name: name.to_string(),
            },
            None => RepoName {
                namespace: None,
                name: s.to_string(),
            },
        })
    }
}

/// Checks `branch`, the revision a push to `repo` commits to: letters, digits, `.`, `_`, `-`
/// and `/`, no empty, `.` or `..` part. An [`Error::Push`] naming `repo` otherwise.
pub fn check_branch(repo: &str, branch: &str) -> Result<()> {
    crate::spec::check_revision(branch).map_err(|why| Error::Push {
        repo: repo.to_string(),
        msg: format!("{why}; give a branch name as the revision"),
    })
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_name_or_org_name_and_nothing_else() {
        let r = RepoName::parse("org/model-1.0").unwrap();
        assert_eq!(
            (r.namespace.as_deref(), r.name.as_str()),
            (Some("org"), "model-1.0")
        );
        assert_eq!(r.to_string(), "org/model-1.0");
        let r = RepoName::parse("mine").unwrap();
        assert_eq!(
            (r.namespace.clone(), r.to_string()),
            (None, "mine".to_string())
        );
        assert!(check_branch("org/x", "dev/v1").is_ok());
        let e = check_branch("org/x", "a/../b").unwrap_err().to_string();
        assert!(e.starts_with("org/x: revision `a/../b`"), "{e}");
        for bad in [
            "a/b/c",
            "org/x@dev",
            "",
            "org/",
            "/x",
            "org/x y",
            "-org/x",
            "org/x--y",
        ] {
            let e = RepoName::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not a repository id"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
