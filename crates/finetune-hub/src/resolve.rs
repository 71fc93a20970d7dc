//! Resolution: an existing local path → the Hugging Face cache → a download through hf-hub.
//!
//! For a Hub id, in order:
//! 1. The cache knows the revision's commit (`refs/{rev}`) and the repo's file list at that
//!    commit (stored by an earlier run), and the snapshot holds every file needed: done, with no
//!    request at all.
//! 2. Offline (`HF_HUB_OFFLINE`): use what the snapshot holds (a Python-made snapshot has no
//!    stored list; its own files stand in for it) or fail naming the missing file.
//! 3. Ask the Hub for the file list (one request), store it, download what the snapshot lacks.
//!    If the Hub cannot be reached (or answers 5xx), go on as in 2.

use crate::cache::RepoCache;
use crate::config::HubConfig;
use crate::dataset::{self, DatasetFiles, DatasetOptions};
use crate::download::Remote;
use crate::error::{Error, NotCached, Result};
use crate::files::{self, ModelFiles};
use crate::spec::{RepoId, RepoKind, Spec};
use std::path::{Path, PathBuf};

/// Where resolved files came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The user's own file or folder.
    Local,
    /// Every file was already in the Hugging Face cache.
    Cache {
        /// The repository at the revision asked for.
        repo: RepoId,
        /// The 40-digit commit the revision resolved to (the snapshot folder's name).
        commit: String,
    },
    /// `files` files were downloaded into the cache just now.
    Downloaded {
        /// The repository at the revision asked for.
        repo: RepoId,
        /// The 40-digit commit the revision resolved to (the snapshot folder's name).
        commit: String,
        /// How many files were downloaded (shards count one each).
        files: usize,
    },
}

/// Options for model resolution.
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// Accept `pytorch_model.bin` when a repository has no safetensors weights.
    pub allow_pickle: bool,
}

/// A model named as a local path or a Hub id, as local files.
pub fn resolve_model(spec: &str, cfg: &HubConfig, opts: &ModelOptions) -> Result<ModelFiles> {
    match Spec::parse(spec, RepoKind::Model)? {
        Spec::Local(path) => files::local_model(&path, opts.allow_pickle),
        Spec::Hub(repo) => resolve_hub_model(&repo, cfg, opts),
    }
}

/// A model on the Hub, as files in the cache.
pub fn resolve_hub_model(
    repo: &RepoId,
    cfg: &HubConfig,
    opts: &ModelOptions,
) -> Result<ModelFiles> {
    let needs = ModelNeeds {
        allow_pickle: opts.allow_pickle,
        label: repo.to_string(),
    };
    let r = resolve_repo(cfg, repo, &needs)?;
    let plan = files::plan(&r.listing, opts.allow_pickle, false, &needs.label)?;
    let shards = needs.more(&r.snapshot, &r.listing)?;
    Ok(ModelFiles::assemble(&r.snapshot, r.origin, &plan, &shards))
}

/// A dataset named as a local path or a Hub id, as local files per split.
pub fn resolve_dataset(spec: &str, cfg: &HubConfig, opts: &DatasetOptions) -> Result<DatasetFiles> {
    match Spec::parse(spec, RepoKind::Dataset)? {
        Spec::Local(path) => dataset::local_dataset(&path, opts),
        Spec::Hub(repo) => resolve_hub_dataset(&repo, cfg, opts),
    }
}

/// A dataset on the Hub, as files in the cache.
pub fn resolve_hub_dataset(
    repo: &RepoId,
    cfg: &HubConfig,
    opts: &DatasetOptions,
) -> Result<DatasetFiles> {
    let needs = DatasetNeeds {
        opts: opts.clone(),
        label: repo.to_string(),
    };
    let r = resolve_repo(cfg, repo, &needs)?;
    let splits = dataset::select(&r.listing, opts, &needs.label)?;
    Ok(DatasetFiles {
        splits: splits
            .into_iter()
            .map(|(k, v)| (k, v.iter().map(|f| r.snapshot.join(f)).collect()))
            .collect(),
        dir: r.snapshot,
        origin: r.origin,
    })
}

/// What a resolution needs from a repository's file list.
trait Needs {
    /// The files to have. `complete`: `listing` is the repository's whole file list; otherwise
    /// it is only what a snapshot holds, and `missing(file)` reports what must be there but is not.
    fn files(
        &self,
        listing: &[String],
        complete: bool,
        missing: &dyn Fn(&str) -> Error,
    ) -> Result<Vec<String>>;
    /// Files named inside files already present (a sharded index's shards).
    fn more(&self, _snapshot: &Path, _listing: &[String]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

struct ModelNeeds {
    allow_pickle: bool,
    label: String,
}

impl Needs for ModelNeeds {
    fn files(
        &self,
        listing: &[String],
        complete: bool,
        missing: &dyn Fn(&str) -> Error,
    ) -> Result<Vec<String>> {
        if !complete && !files::is_adapter(listing) {
            let has = |f: &str| listing.iter().any(|l| l == f);
            if !has(files::CONFIG) {
                return Err(missing(files::CONFIG));
            }
            let weights = [
                files::SAFETENSORS,
                files::SAFETENSORS_INDEX,
                files::PICKLE,
                files::PICKLE_INDEX,
            ];
            if !weights.iter().any(|w| has(w)) {
                return Err(missing(files::SAFETENSORS));
            }
        }
        Ok(files::plan(listing, self.allow_pickle, true, &self.label)?.files())
    }

    fn more(&self, snapshot: &Path, listing: &[String]) -> Result<Vec<String>> {
        let plan = files::plan(listing, self.allow_pickle, false, &self.label)?;
        if !plan.weights.sharded {
            return Ok(Vec::new());
        }
        files::shards_of_index(&snapshot.join(&plan.weights.file), &self.label)
    }
}

struct DatasetNeeds {
    opts: DatasetOptions,
    label: String,
}

impl Needs for DatasetNeeds {
    fn files(
        &self,
        listing: &[String],
        complete: bool,
        missing: &dyn Fn(&str) -> Error,
    ) -> Result<Vec<String>> {
        match dataset::select(listing, &self.opts, &self.label) {
            Ok(splits) => Ok(splits.into_values().flatten().collect()),
            Err(Error::Repo { .. }) if !complete => Err(missing(&format!(
                "data files ({})",
                dataset::DATA_EXTENSIONS.join(", ")
            ))),
            Err(e) => Err(e),
        }
    }
}

struct Resolved {
    snapshot: PathBuf,
    listing: Vec<String>,
    origin: Origin,
}

fn resolve_repo(cfg: &HubConfig, repo: &RepoId, needs: &dyn Needs) -> Result<Resolved> {
    let cache = RepoCache::new(&cfg.cache_dir, repo);
    let never_missing = |_: &str| unreachable!("a complete listing reports no missing file");
    if let Some(commit) = cache.commit_of(repo) {
        if let Some(listing) = cache.read_listing(&commit) {
            let wanted = needs.files(&listing, true, &never_missing)?;
            if all_present(&cache, &commit, &wanted)
                && all_present(
                    &cache,
                    &commit,
                    &needs.more(&cache.snapshot(&commit), &listing)?,
                )
            {
                return Ok(Resolved {
                    snapshot: cache.snapshot(&commit),
                    listing,
                    origin: Origin::Cache {
                        repo: repo.clone(),
                        commit,
                    },
                });
            }
        }
    }
    let reason = if cfg.offline {
        "offline mode is on (HF_HUB_OFFLINE)".to_string()
    } else {
        let remote = Remote::new(cfg)?;
        match remote.listing(repo) {
            Ok((commit, listing)) => return fetch(&cache, &remote, repo, needs, commit, listing),
            Err(f) if f.falls_back_to_cache() => {
                format!("the Hub ({}) is unreachable ({f})", cfg.endpoint)
            }
            Err(f) => return Err(f.into_error(repo, None, cfg, &cache)),
        }
    };
    from_cache_only(&cache, repo, needs, &reason)
}

fn all_present(cache: &RepoCache, commit: &str, files: &[String]) -> bool {
    files.iter().all(|f| cache.file(commit, f).is_some())
}

/// Step 3: the Hub answered with `commit` and `listing`; download whatever the snapshot lacks.
fn fetch(
    cache: &RepoCache,
    remote: &Remote,
    repo: &RepoId,
    needs: &dyn Needs,
    commit: String,
    listing: Vec<String>,
) -> Result<Resolved> {
    cache.write_listing(&commit, &listing)?;
    let label = repo.to_string();
    let never_missing = |_: &str| unreachable!("a complete listing reports no missing file");
    let mut downloaded = 0;
    let mut get_all = |files: &[String]| -> Result<()> {
        for f in files {
            if !listing.contains(f) {
                return Err(Error::repo(
                    &label,
                    format!("needs `{f}`, which the repository does not have at commit {commit}"),
                ));
            }
            if cache.file(&commit, f).is_some() {
                continue;
            }
            let path = remote.download(repo, cache, f)?;
            if path != cache.snapshot(&commit).join(f) {
                return Err(Error::repo(
                    &label,
                    format!("the revision moved to another commit while downloading `{f}` (listed at {commit}); run again"),
                ));
            }
            downloaded += 1;
        }
        Ok(())
    };
    get_all(&needs.files(&listing, true, &never_missing)?)?;
    get_all(&needs.more(&cache.snapshot(&commit), &listing)?)?;
    cache.write_ref(repo, &commit)?;
    cache.drop_commit_ref(repo);
    let origin = if downloaded > 0 {
        Origin::Downloaded {
            repo: repo.clone(),
            commit: commit.clone(),
            files: downloaded,
        }
    } else {
        Origin::Cache {
            repo: repo.clone(),
            commit: commit.clone(),
        }
    };
    Ok(Resolved {
        snapshot: cache.snapshot(&commit),
        listing,
        origin,
    })
}

/// Step 2: no network; the snapshot must hold what is needed.
fn from_cache_only(
    cache: &RepoCache,
    repo: &RepoId,
    needs: &dyn Needs,
    reason: &str,
) -> Result<Resolved> {
    let not_cached = |file: &str, searched: String| {
        Error::NotCached(Box::new(NotCached {
            repo: repo.clone(),
            file: file.to_string(),
            searched,
            reason: reason.to_string(),
            nothing_cached: false,
        }))
    };
    let Some(commit) = cache.commit_of(repo) else {
        if !cache.dir().exists() {
            return Err(Error::NotCached(Box::new(NotCached {
                repo: repo.clone(),
                file: String::new(),
                searched: cache.dir().display().to_string(),
                reason: reason.to_string(),
                nothing_cached: true,
            })));
        }
        let first = match repo.kind {
            RepoKind::Model => files::CONFIG.to_string(),
            RepoKind::Dataset => format!("data files ({})", dataset::DATA_EXTENSIONS.join(", ")),
        };
        return Err(not_cached(
            &first,
            format!(
                "{}: no snapshot for revision `{}`",
                cache.dir().display(),
                repo.revision
            ),
        ));
    };
    let snapshot = cache.snapshot(&commit);
    let searched = || snapshot.display().to_string();
    let (complete, listing) = match cache.read_listing(&commit) {
        Some(l) => (true, l),
        None => (false, cache.snapshot_files(&commit)),
    };
    let missing = |f: &str| not_cached(f, searched());
    let wanted = needs.files(&listing, complete, &missing)?;
    if let Some(f) = wanted.iter().find(|f| cache.file(&commit, f).is_none()) {
        return Err(missing(f));
    }
    let more = needs.more(&snapshot, &listing)?;
    if let Some(f) = more.iter().find(|f| cache.file(&commit, f).is_none()) {
        return Err(missing(f));
    }
    Ok(Resolved {
        snapshot,
        listing,
        origin: Origin::Cache {
            repo: repo.clone(),
            commit,
        },
    })
}
