//! Reading and writing safetensors checkpoints: single files, folders holding `model.safetensors`,
//! and sharded checkpoints described by `model.safetensors.index.json`.
//!
//! Files are memory-mapped; every error names the file. Written files carry the header metadata
//! `{"format": "pt"}` that `transformers` insists on, and are written atomically.

use crate::error::{Error, Result};
use crate::fsutil::write_atomically;
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

/// The weights file of an unsharded checkpoint folder, and the one exports write
/// (transformers' `SAFE_WEIGHTS_NAME`).
pub const SINGLE_FILE: &str = "model.safetensors";
/// The index of a sharded checkpoint folder, whose `weight_map` maps each tensor name to its
/// shard file (transformers' `SAFE_WEIGHTS_INDEX_NAME`).
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Checks that a file name taken from an index or listing stays inside its folder.
pub fn validate_relative_name(name: &str) -> std::result::Result<(), String> {
    let p = Path::new(name);
    if name.is_empty() {
        return Err("empty file name".into());
    }
    if p.is_absolute() || name.starts_with('/') || name.starts_with('\\') || name.contains(':') {
        return Err(format!("`{name}` is an absolute path"));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) => {}
            _ => return Err(format!("`{name}` would leave the checkpoint folder")),
        }
    }
    if name.contains('\\') {
        return Err(format!("`{name}` contains a backslash"));
    }
    Ok(())
}

/// The safetensors files that make up the checkpoint at `path` (a file or a folder).
pub fn checkpoint_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        ));
    }
    let single = path.join(SINGLE_FILE);
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = path.join(INDEX_FILE);
    if index.is_file() {
        return shard_files(&index);
    }
    Err(Error::config(format!(
        "{}: holds neither {SINGLE_FILE} nor {INDEX_FILE}",
        path.display()
    )))
}

/// Reads a sharded index and returns its shard files, checked to exist inside its folder.
pub fn shard_files(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let bad = |msg: String| Error::Record {
        path: index.to_path_buf(),
        msg,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("missing object `weight_map`".into()))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut shards = BTreeSet::new();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| bad(format!("weight_map[`{tensor}`] is not a file name")))?;
        validate_relative_name(file).map_err(|m| bad(format!("weight_map[`{tensor}`]: {m}")))?;
        shards.insert(file.to_string());
    }
    if shards.is_empty() {
        return Err(bad("`weight_map` is empty".into()));
    }
    shards
        .into_iter()
        .map(|f| {
            let p = dir.join(&f);
            if p.is_file() {
                Ok(p)
            } else {
                Err(bad(format!("names shard `{f}`, which does not exist")))
            }
        })
        .collect()
}

/// A tensor as found in a file: name, shape and dtype, without loading the data.
#[derive(Debug, Clone)]
pub struct TensorHeader {
    /// The tensor's name in the file.
    pub name: String,
    /// Its dimensions.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: DType,
    /// The file that holds it (one shard of a sharded checkpoint).
    pub file: PathBuf,
}

fn st_dtype(d: safetensors::Dtype, file: &Path, name: &str) -> Result<DType> {
    use safetensors::Dtype as S;
    Ok(match d {
        S::U8 => DType::U8,
        S::U32 => DType::U32,
        S::I64 => DType::I64,
        S::I32 => DType::I32,
        S::I16 => DType::I16,
        S::BF16 => DType::BF16,
        S::F16 => DType::F16,
        S::F32 => DType::F32,
        S::F64 => DType::F64,
        other => {
            return Err(Error::Safetensors {
                path: file.to_path_buf(),
                msg: format!("tensor `{name}` has unsupported dtype {other:?}"),
            })
        }
    })
}

/// A memory-mapped safetensors file.
pub struct MappedFile {
    path: PathBuf,
    mmap: memmap2::Mmap,
}

impl MappedFile {
    /// Maps `path` read-only and checks its header. Fails, naming the file, if it cannot be
    /// opened or is not safetensors.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the mapping is read-only; the usual caveat of memory maps applies (a file
        // truncated by another process while mapped), as in every safetensors reader.
        let mmap =
            unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|e| Error::io(path, e))?;
        let me = Self {
            path: path.to_path_buf(),
            mmap,
        };
        me.parse()?; // validate the header once, up front
        Ok(me)
    }

    fn parse(&self) -> Result<safetensors::SafeTensors<'_>> {
        safetensors::SafeTensors::deserialize(&self.mmap).map_err(|e| Error::Safetensors {
            path: self.path.clone(),
            msg: e.to_string(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor headers in the file's own (offset) order.
    pub fn headers(&self) -> Result<Vec<TensorHeader>> {
        let st = self.parse()?;
        let mut out: Vec<(usize, TensorHeader)> = Vec::new();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&self.mmap).map_err(|e| {
            Error::Safetensors {
                path: self.path.clone(),
                msg: e.to_string(),
            }
        })?;
        for (name, view) in st.tensors() {
            let offset = meta.info(&name).map(|i| i.data_offsets.0).unwrap_or(0);
            out.push((
                offset,
                TensorHeader {
                    dtype: st_dtype(view.dtype(), &self.path, &name)?,
                    shape: view.shape().to_vec(),
                    name,
                    file: self.path.clone(),
                },
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
        Ok(out.into_iter().map(|(_, h)| h).collect())
    }

    /// Loads tensor `name` onto `device` in its stored dtype; [`Error::Safetensors`] if the
    /// file has no such tensor or its dtype is not supported.
    pub fn load(&self, name: &str, device: &Device) -> Result<Tensor> {
        let st = self.parse()?;
        let view = st.tensor(name).map_err(|e| Error::Safetensors {
            path: self.path.clone(),
            msg: format!("tensor `{name}`: {e}"),
        })?;
        st_dtype(view.dtype(), &self.path, name)?;
        candle_core::safetensors::Load::load(&view, device).map_err(|e| Error::Safetensors {
            path: self.path.clone(),
            msg: format!("tensor `{name}`: {e}"),
        })
    }
}

/// All tensors of a checkpoint (one or several files), memory-mapped, addressable by name.
pub struct Checkpoint {
    files: Vec<MappedFile>,
    route: HashMap<String, usize>,
    order: Vec<TensorHeader>,
}

impl Checkpoint {
    /// Opens the checkpoint at `path`: a safetensors file, or a folder (single or sharded).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_files(&checkpoint_files(path)?)
    }

    /// Opens these files as one checkpoint (the shards of one model), headers in file order; a
    /// tensor name found in two files is an error.
    pub fn open_files(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::new();
        let mut route = HashMap::new();
        let mut order = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let f = MappedFile::open(p)?;
            for h in f.headers()? {
                if route.insert(h.name.clone(), i).is_some() {
                    return Err(Error::Safetensors {
                        path: p.clone(),
                        msg: format!("tensor `{}` also appears in another shard", h.name),
                    });
                }
                order.push(h);
            }
            files.push(f);
        }
        Ok(Self {
            files,
            route,
            order,
        })
    }

    /// Headers of every tensor, shard by shard in file order.
    pub fn headers(&self) -> &[TensorHeader] {
        &self.order
    }

    /// Whether some file of the checkpoint holds a tensor of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.route.contains_key(name)
    }

    /// Loads tensor `name` from the file that holds it onto `device`, in its stored dtype;
    /// [`Error::UnknownParam`] if no file holds it.
    pub fn load(&self, name: &str, device: &Device) -> Result<Tensor> {
        let i = *self
            .route
            .get(name)
            .ok_or_else(|| Error::UnknownParam(name.to_string()))?;
        self.files[i].load(name, device)
    }
}

/// Saves named tensors to `path` with `{"format": "pt"}` metadata, atomically.
pub fn save_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let host: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let metadata: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    write_atomically(path, |tmp| {
        safetensors::serialize_to_file(
            host.iter().map(|(n, t)| (n.as_str(), t)),
            Some(metadata),
            tmp,
        )
        .map_err(|e| Error::Record {
            path: path.to_path_buf(),
            msg: format!("cannot write: {e}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names() {
        assert!(validate_relative_name("model-00001-of-00002.safetensors").is_ok());
        assert!(validate_relative_name("sub/model.safetensors").is_ok());
        for bad in [
            "../evil.safetensors",
            "/etc/passwd",
            "a/../../b",
            "",
            "C:\\x",
            "a\\..\\b",
        ] {
            assert!(validate_relative_name(bad).is_err(), "{bad}");
        }
    }
}
