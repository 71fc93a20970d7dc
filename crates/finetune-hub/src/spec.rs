//! What the user typed: an existing local path, or a Hub id `name`, `org/name` or
//! `org/name@revision` (a branch, tag or commit; `refs/convert/parquet` and `refs/pr/N` too).

use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// Which kind of Hub repository; decides URL prefixes and cache folder names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// A model repository (`https://huggingface.co/org/name`, cache folder `models--…`).
    Model,
    /// A dataset repository (`https://huggingface.co/datasets/org/name`, cache folder
    /// `datasets--…`).
    Dataset,
}

impl RepoKind {
    /// `models` / `datasets`: the cache folder prefix and the API path segment.
    pub fn plural(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        }
    }
}

/// A repository on the Hub at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    /// Model or dataset.
    pub kind: RepoKind,
    /// `org/name`, or a bare `name` for the Hub's canonical repositories (`bert-base-uncased`).
    pub name: String,
    /// Branch, tag or commit; `main` when the user named none.
    pub revision: String,
}

impl RepoId {
    /// A repository from its parts, checked as [`RepoId::parse`] checks them: the Hub's rules
    /// for names, and a revision that stays inside `refs/` in the cache. Errors are
    /// [`Error::BadSpec`].
    pub fn new(kind: RepoKind, name: &str, revision: &str) -> Result<Self> {
        check_name(name).map_err(|why| Error::BadSpec {
            spec: name.to_string(),
            why,
        })?;
        check_revision(revision).map_err(|why| Error::BadSpec {
            spec: format!("{name}@{revision}"),
            why,
        })?;
        Ok(RepoId {
            kind,
            name: name.to_string(),
            revision: revision.to_string(),
        })
    }

    /// Parses `org/name[@revision]`.
    pub fn parse(s: &str, kind: RepoKind) -> Result<Self> {
        let (name, revision) = match s.split_once('@') {
            Some((n, r)) => (n, r),
            None => (s, "main"),
        };
        let bad = |why: String| Error::BadSpec {
            spec: s.to_string(),
            why,
        };
        check_name(name).map_err(bad)?;
        check_revision(revision).map_err(bad)?;
        Ok(RepoId {
            kind,
            name: name.to_string(),
            revision: revision.to_string(),
        })
    }

    /// The repository's folder in the Hugging Face cache: `models--org--name`.
    pub fn folder_name(&self) -> String {
        format!("{}--{}", self.kind.plural(), self.name.replace('/', "--"))
    }

    /// Whether the revision is a full commit hash (then no ref file is needed in the cache).
    pub fn revision_is_commit(&self) -> bool {
        is_commit_hash(&self.revision)
    }

    pub(crate) fn to_hf(&self) -> hf_hub::Repo {
        let kind = match self.kind {
            RepoKind::Model => hf_hub::RepoType::Model,
            RepoKind::Dataset => hf_hub::RepoType::Dataset,
        };
        hf_hub::Repo::with_revision(self.name.clone(), kind, self.revision.clone())
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == RepoKind::Dataset {
            write!(f, "dataset ")?;
        }
        write!(f, "{}@{}", self.name, self.revision)
    }
}

/// A model or dataset as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// An existing file or folder; used as is, never copied into the cache.
    Local(PathBuf),
    /// A Hub repository at a revision (`main` when none was given).
    Hub(RepoId),
}

impl Spec {
    /// An existing path wins; otherwise the text must be a Hub id. Text that looks like a path
    /// (`./x`, `/x`, `~/x`, `a/b/c`) but does not exist gets an error saying so.
    pub fn parse(s: &str, kind: RepoKind) -> Result<Spec> {
        let path = Path::new(s);
        if path.exists() {
            return Ok(Spec::Local(path.to_path_buf()));
        }
        let looks_like_path = s.starts_with(['/', '.', '~'])
            || s.contains('\\')
            || s.split('@').next().unwrap_or("").matches('/').count() > 1;
        if looks_like_path {
            return Err(Error::BadSpec {
                spec: s.to_string(),
                why: "no such file or folder".into(),
            });
        }
        RepoId::parse(s, kind).map(Spec::Hub)
    }
}

pub(crate) fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Hub's rules for a repository name: `name` or `org/name`, each part 1-96 characters of
/// `[A-Za-z0-9._-]`, not starting or ending with `-` or `.`, without `--` or `..`.
pub(crate) fn check_name(name: &str) -> std::result::Result<(), String> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 2 {
        return Err("a repository id has at most one `/`".into());
    }
    for p in parts {
        if p.is_empty() || p.len() > 96 {
            return Err("each part of a repository id has 1 to 96 characters".into());
        }
        if !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(format!(
                "`{p}` may hold only letters, digits, `.`, `_`, `-`"
            ));
        }
        if p.starts_with(['-', '.'])
            || p.ends_with(['-', '.'])
            || p.contains("--")
            || p.contains("..")
        {
            return Err(format!(
                "`{p}` may not start or end with `-` or `.`, nor hold `--` or `..`"
            ));
        }
    }
    Ok(())
}

/// A revision becomes a path under `refs/` in the cache: no `..`, no empty or absolute parts.
pub(crate) fn check_revision(rev: &str) -> std::result::Result<(), String> {
    let ok_chars = rev
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
    if rev.is_empty() || !ok_chars {
        return Err(format!(
            "revision `{rev}` may hold only letters, digits, `.`, `_`, `-`, `/`"
        ));
    }
    if rev
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "revision `{rev}` has an empty, `.` or `..` path component"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_revisions() {
        let r = RepoId::parse("sentence-transformers/all-MiniLM-L6-v2", RepoKind::Model).unwrap();
        assert_eq!(r.name, "sentence-transformers/all-MiniLM-L6-v2");
        assert_eq!(r.revision, "main");
        assert_eq!(
            r.folder_name(),
            "models--sentence-transformers--all-MiniLM-L6-v2"
        );
        let r = RepoId::parse("timm/resnet50.a1_in1k@v1.0", RepoKind::Model).unwrap();
        assert_eq!(r.revision, "v1.0");
        let r = RepoId::parse("bert-base-uncased", RepoKind::Model).unwrap();
        assert_eq!(r.folder_name(), "models--bert-base-uncased");
        let r = RepoId::parse("org/data@refs/convert/parquet", RepoKind::Dataset).unwrap();
        assert_eq!(r.folder_name(), "datasets--org--data");
        assert_eq!(r.to_string(), "dataset org/data@refs/convert/parquet");
    }

    #[test]
    fn refuses_bad_ids_and_escaping_revisions() {
        for bad in [
            "a/b/c",
            "org/../x",
            "-org/x",
            "org/x.",
            "org/x--y",
            "org/x@../../etc",
            "org/x@",
            "org/x@a//b",
            "org/x y",
        ] {
            assert!(
                RepoId::parse(bad, RepoKind::Model).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn existing_paths_win_and_missing_paths_say_so() {
        let dir = std::env::temp_dir();
        let s = dir.to_str().unwrap();
        assert_eq!(
            Spec::parse(s, RepoKind::Model).unwrap(),
            Spec::Local(dir.clone())
        );
        let e = Spec::parse("./no/such/folder", RepoKind::Model).unwrap_err();
        assert!(e.to_string().contains("no such file or folder"), "{e}");
        assert!(matches!(
            Spec::parse("org/name@v2", RepoKind::Model).unwrap(),
            Spec::Hub(_)
        ));
    }
}
