//! The parameter store: every named tensor of a model, in a stable order, under the Hub's names,
//! with a trainable mask.
//!
//! Each tensor lives in a [`Var`]. A model never keeps tensors itself: it keeps [`Param`] handles
//! and asks for the tensor at every forward. A trainable parameter is handed out as the `Var`'s
//! own tensor, so the autograd graph reaches it; a frozen one (and every buffer) is handed out
//! detached, so backward never computes a gradient for it. Changing the mask between steps
//! (gradual unfreezing) therefore takes effect at the next forward, and optimizer updates
//! (in place, through the `Var`) are seen through both kinds of view.

use crate::error::{Error, Result};
use crate::lora::{Adapter, LoraSettings, ModuleKind};
use crate::safetensors_io::{save_tensors, Checkpoint};
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// Whether a tensor is learned (a parameter) or carried state (a buffer such as BatchNorm's
/// running statistics or BERT's `position_ids`). Buffers are never trainable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorKind {
    /// Learned by gradient descent (`nn.Parameter`); trainable unless frozen.
    Parameter,
    /// Carried state (`register_buffer`); never trainable, never updated by an optimizer.
    Buffer,
}

impl TensorKind {
    /// The kind PyTorch would give a checkpoint tensor of this name and dtype: integer tensors
    /// and BatchNorm/position-id buffers are buffers, everything else a parameter.
    pub fn infer(name: &str, dtype: DType) -> Self {
        const BUFFERS: [&str; 4] = [
            "running_mean",
            "running_var",
            "num_batches_tracked",
            "position_ids",
        ];
        let last = name.rsplit('.').next().unwrap_or(name);
        if !dtype.is_float() || BUFFERS.contains(&last) {
            TensorKind::Buffer
        } else {
            TensorKind::Parameter
        }
    }
}

struct Entry {
    name: String,
    var: Var,
    kind: TensorKind,
    trainable: bool,
}

#[derive(Default)]
struct Inner {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    /// The layers built over the store (`Linear`, `Conv2d`), by module name, in build order:
    /// what LoRA can target.
    modules: Vec<(String, ModuleKind)>,
    /// Modules whose path in the module tree PEFT walks differs from their state-dict name.
    peft_paths: HashMap<String, String>,
    /// The LoRA adapter of each adapted module, and the run's adapter settings.
    adapters: HashMap<String, Adapter>,
    lora: Option<Arc<LoraSettings>>,
}

/// What [`ParamStore::infos`] reports for one tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamInfo {
    /// The tensor's name in the store.
    pub name: String,
    /// Its dimensions.
    pub shape: Vec<usize>,
    /// Its element type (serialised as candle's name, e.g. `f32`).
    #[serde(serialize_with = "ser_dtype")]
    pub dtype: DType,
    /// Parameter or buffer.
    pub kind: TensorKind,
    /// Number of elements, the product of `shape`.
    pub numel: usize,
    /// Whether it trains now (never for a buffer).
    pub trainable: bool,
}

fn ser_dtype<S: serde::Serializer>(d: &DType, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

/// Parameter counts (buffers excluded), as PEFT's `print_trainable_parameters` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamCounts {
    /// Elements of the trainable parameters.
    pub trainable: usize,
    /// Elements of all parameters, frozen ones included.
    pub total: usize,
}

impl ParamCounts {
    /// `trainable` as a percentage of `total` (0 when there is no parameter).
    pub fn trainable_percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.trainable as f64 / self.total as f64
        }
    }
}

/// `12345678` → `12,345,678`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl std::fmt::Display for ParamCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trainable params: {} || all params: {} || trainable%: {:.4}",
            thousands(self.trainable),
            thousands(self.total),
            self.trainable_percent()
        )
    }
}

/// A shared, cheaply clonable store of named tensors.
#[derive(Clone, Default)]
pub struct ParamStore {
    inner: Arc<RwLock<Inner>>,
}

/// A handle to one tensor of a [`ParamStore`], what model layers hold.
#[derive(Clone)]
pub struct Param {
    store: ParamStore,
    idx: usize,
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({})", self.name())
    }
}

impl Param {
    /// The tensor to use in a forward pass (graph-tracked only if trainable).
    pub fn tensor(&self) -> Tensor {
        self.store.with_entry(self.idx, view)
    }

    /// The tensor's name in the store.
    pub fn name(&self) -> String {
        self.store.with_entry(self.idx, |e| e.name.clone())
    }

    /// Overwrites the value in place (same shape), e.g. a BatchNorm running statistic.
    pub fn set(&self, value: &Tensor) -> Result<()> {
        self.store.with_entry(self.idx, |e| set_entry(e, value))
    }

    /// Whether the tensor trains now (is handed out graph-tracked).
    pub fn is_trainable(&self) -> bool {
        self.store.with_entry(self.idx, |e| e.trainable)
    }

    /// The store the tensor lives in.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }
}

fn view(e: &Entry) -> Tensor {
    if e.trainable {
        e.var.as_tensor().clone()
    } else {
        e.var.as_detached_tensor()
    }
}

fn set_entry(e: &Entry, value: &Tensor) -> Result<()> {
    if e.var.dims() != value.dims() {
        return Err(Error::Shape {
            name: e.name.clone(),
            expected: e.var.dims().to_vec(),
            got: value.dims().to_vec(),
        });
    }
    let value = value.to_dtype(e.var.dtype())?.to_device(e.var.device())?;
    e.var.set(&value)?;
    Ok(())
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn with_entry<R>(&self, idx: usize, f: impl FnOnce(&Entry) -> R) -> R {
        f(&self.read().entries[idx])
    }

    fn index_of(&self, name: &str) -> Result<usize> {
        self.read()
            .index
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownParam(name.to_string()))
    }

    /// Adds a tensor (copied into a fresh `Var`). Parameters start trainable; buffers never are.
    pub fn insert(&self, name: &str, value: &Tensor, kind: TensorKind) -> Result<Param> {
        self.push(name, Var::from_tensor(&value.detach())?, kind)
    }

    /// Adds `var` itself, not a copy: a tensor this store shares with another (an update
    /// through either is seen by both, as one model's backbone shared by several heads).
    pub fn insert_shared(&self, name: &str, var: &Var, kind: TensorKind) -> Result<Param> {
        self.push(name, var.clone(), kind)
    }

    /// Makes `name` hold `var` itself (another store's tensor) instead of its own value;
    /// handles stay valid and the trainable flag is kept. The shapes must match.
    pub fn share(&self, name: &str, var: &Var) -> Result<()> {
        let idx = self.index_of(name)?;
        let mut inner = self.write();
        let e = &mut inner.entries[idx];
        if e.var.dims() != var.dims() {
            return Err(Error::Shape {
                name: name.to_string(),
                expected: e.var.dims().to_vec(),
                got: var.dims().to_vec(),
            });
        }
        e.var = var.clone();
        Ok(())
    }

    fn push(&self, name: &str, var: Var, kind: TensorKind) -> Result<Param> {
        let mut inner = self.write();
        if inner.index.contains_key(name) {
            return Err(Error::config(format!(
                "parameter `{name}` is defined twice"
            )));
        }
        let idx = inner.entries.len();
        inner.entries.push(Entry {
            name: name.to_string(),
            var,
            kind,
            trainable: kind == TensorKind::Parameter,
        });
        inner.index.insert(name.to_string(), idx);
        drop(inner);
        Ok(Param {
            store: self.clone(),
            idx,
        })
    }

    /// Replaces a tensor's value, shape included (a new classification head). Handles stay valid;
    /// the trainable flag is kept.
    pub fn replace(&self, name: &str, value: &Tensor) -> Result<()> {
        let idx = self.index_of(name)?;
        let var = Var::from_tensor(&value.detach())?;
        self.write().entries[idx].var = var;
        Ok(())
    }

    /// The device of the store's tensors (the CPU for an empty store).
    pub fn device(&self) -> Device {
        self.read()
            .entries
            .first()
            .map_or(Device::Cpu, |e| e.var.device().clone())
    }

    /// Whether the store holds a tensor of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.read().index.contains_key(name)
    }

    /// Number of tensors, buffers included.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether the store holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A handle to the named tensor.
    pub fn param(&self, name: &str) -> Result<Param> {
        Ok(Param {
            store: self.clone(),
            idx: self.index_of(name)?,
        })
    }

    /// The tensor to use in a forward pass (graph-tracked only if trainable).
    pub fn get(&self, name: &str) -> Result<Tensor> {
        Ok(self.with_entry(self.index_of(name)?, view))
    }

    /// The underlying variable (for optimizers and tests).
    pub fn var(&self, name: &str) -> Result<Var> {
        Ok(self.with_entry(self.index_of(name)?, |e| e.var.clone()))
    }

    /// Overwrites a value in place; the shape must match.
    pub fn set(&self, name: &str, value: &Tensor) -> Result<()> {
        self.with_entry(self.index_of(name)?, |e| set_entry(e, value))
    }

    /// Whether the named tensor is a parameter or a buffer ([`Error::UnknownParam`] if absent).
    pub fn kind(&self, name: &str) -> Result<TensorKind> {
        Ok(self.with_entry(self.index_of(name)?, |e| e.kind))
    }

    /// Whether the named tensor trains now ([`Error::UnknownParam`] if absent).
    pub fn is_trainable(&self, name: &str) -> Result<bool> {
        Ok(self.with_entry(self.index_of(name)?, |e| e.trainable))
    }

    /// Sets one parameter's trainable flag. Asking to train a buffer is an error.
    pub fn set_trainable(&self, name: &str, trainable: bool) -> Result<()> {
        let idx = self.index_of(name)?;
        let mut inner = self.write();
        let e = &mut inner.entries[idx];
        if trainable && e.kind == TensorKind::Buffer {
            return Err(Error::config(format!(
                "`{name}` is a buffer, not a parameter: it cannot be trained"
            )));
        }
        e.trainable = trainable;
        Ok(())
    }

    /// Sets the trainable flag of every parameter for which `f(name)` gives `Some(flag)`;
    /// returns how many parameters changed.
    pub fn update_mask(&self, mut f: impl FnMut(&str) -> Option<bool>) -> usize {
        let mut inner = self.write();
        let mut changed = 0;
        for e in inner
            .entries
            .iter_mut()
            .filter(|e| e.kind == TensorKind::Parameter)
        {
            if let Some(t) = f(&e.name) {
                changed += usize::from(e.trainable != t);
                e.trainable = t;
            }
        }
        changed
    }

    /// Names in store order.
    pub fn names(&self) -> Vec<String> {
        self.read().entries.iter().map(|e| e.name.clone()).collect()
    }

    /// Name, shape, dtype, kind, size and trainable flag of every tensor, in store order.
    pub fn infos(&self) -> Vec<ParamInfo> {
        self.read()
            .entries
            .iter()
            .map(|e| ParamInfo {
                name: e.name.clone(),
                shape: e.var.dims().to_vec(),
                dtype: e.var.dtype(),
                kind: e.kind,
                numel: e.var.elem_count(),
                trainable: e.trainable,
            })
            .collect()
    }

    /// Trainable parameters with their variables, in store order.
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        self.read()
            .entries
            .iter()
            .filter(|e| e.trainable)
            .map(|e| (e.name.clone(), e.var.clone()))
            .collect()
    }

    /// Every tensor, detached, in store order (for saving and exporting).
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.read()
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.var.as_detached_tensor()))
            .collect()
    }

    /// Trainable and total element counts of the parameters (buffers excluded).
    pub fn counts(&self) -> ParamCounts {
        let inner = self.read();
        let params = inner
            .entries
            .iter()
            .filter(|e| e.kind == TensorKind::Parameter);
        let (mut trainable, mut total) = (0, 0);
        for e in params {
            total += e.var.elem_count();
            if e.trainable {
                trainable += e.var.elem_count();
            }
        }
        ParamCounts { trainable, total }
    }

    /// Records a layer built over the store (what LoRA targets select from); a layer built
    /// twice under one name is recorded once.
    pub fn register_module(&self, name: &str, kind: ModuleKind) {
        let mut inner = self.write();
        if !inner.modules.iter().any(|(n, _)| n == name) {
            inner.modules.push((name.to_string(), kind));
        }
    }

    /// Records that module `name`'s path in the module tree transformers builds (the one PEFT
    /// walks and names adapter tensors by) is `path`, where a model's state dict keeps an older
    /// name (transformers 5's ViT: `vit.layers.N.attention.q_proj` for the saved
    /// `vit.encoder.layer.N.attention.attention.query`).
    pub fn set_peft_path(&self, name: &str, path: &str) {
        self.write()
            .peft_paths
            .insert(name.to_string(), path.to_string());
    }

    /// Module `name`'s path as PEFT names it (see [`Self::set_peft_path`]; its own name
    /// unless recorded otherwise).
    pub fn peft_path(&self, name: &str) -> String {
        self.read()
            .peft_paths
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    /// The module a PEFT module path names: a registered module of that name, or the one whose
    /// recorded PEFT path it is.
    pub fn module_of_peft_path(&self, path: &str) -> Option<String> {
        let inner = self.read();
        if inner.modules.iter().any(|(n, _)| n == path) {
            return Some(path.to_string());
        }
        inner
            .peft_paths
            .iter()
            .find(|(_, p)| *p == path)
            .map(|(n, _)| n.clone())
    }

    /// The layers built over the store, in build order.
    pub fn modules(&self) -> Vec<(String, ModuleKind)> {
        self.read().modules.clone()
    }

    /// The LoRA adapter of module `name`, if it has one (layers ask at every forward).
    pub fn adapter(&self, name: &str) -> Option<Adapter> {
        let inner = self.read();
        if inner.adapters.is_empty() {
            return None;
        }
        inner.adapters.get(name).cloned()
    }

    /// Every adapted module's name and adapter, in module build order.
    pub fn adapters(&self) -> Vec<(String, Adapter)> {
        let inner = self.read();
        inner
            .modules
            .iter()
            .filter_map(|(n, _)| inner.adapters.get(n).map(|a| (n.clone(), a.clone())))
            .collect()
    }

    /// Attaches `adapter` to module `name` (its tensors must already be in the store).
    pub fn set_adapter(&self, name: &str, adapter: Adapter) {
        self.write().adapters.insert(name.to_string(), adapter);
    }

    /// The run's LoRA settings, when the store carries adapters.
    pub fn lora(&self) -> Option<Arc<LoraSettings>> {
        self.read().lora.clone()
    }

    /// Records the run's LoRA settings (what the PEFT export writes).
    pub fn set_lora(&self, settings: LoraSettings) {
        self.write().lora = Some(Arc::new(settings));
    }

    /// Converts every floating-point tensor to `dtype` (integer buffers keep theirs).
    pub fn to_dtype(&self, dtype: DType) -> Result<()> {
        self.convert(|t| {
            if t.dtype().is_float() {
                t.to_dtype(dtype)
            } else {
                Ok(t.clone())
            }
        })
    }

    /// Moves every tensor to `device`.
    pub fn to_device(&self, device: &Device) -> Result<()> {
        self.convert(|t| t.to_device(device))
    }

    fn convert(&self, f: impl Fn(&Tensor) -> candle_core::Result<Tensor>) -> Result<()> {
        let mut inner = self.write();
        for e in inner.entries.iter_mut() {
            let t = f(e.var.as_tensor())?;
            e.var = Var::from_tensor(&t)?;
        }
        Ok(())
    }

    /// Loads every tensor of a checkpoint (file or folder, single or sharded), in file order,
    /// converting floating-point tensors to `dtype` when given. Kinds follow
    /// [`TensorKind::infer`].
    pub fn from_checkpoint(path: &Path, device: &Device, dtype: Option<DType>) -> Result<Self> {
        let ckpt = Checkpoint::open(path)?;
        let store = Self::new();
        for h in ckpt.headers() {
            let mut t = ckpt.load(&h.name, device)?;
            if let Some(d) = dtype {
                if t.dtype().is_float() {
                    t = t.to_dtype(d)?;
                }
            }
            store.insert(&h.name, &t, TensorKind::infer(&h.name, h.dtype))?;
        }
        Ok(store)
    }

    /// Saves every tensor to one safetensors file (`format: pt` metadata), atomically.
    /// `rename` maps internal names to the names written (return `None` to skip a tensor).
    pub fn save(&self, path: &Path, rename: impl Fn(&str) -> Option<String>) -> Result<()> {
        let tensors: Vec<(String, Tensor)> = self
            .tensors()
            .into_iter()
            .filter_map(|(n, t)| rename(&n).map(|m| (m, t)))
            .collect();
        save_tensors(path, &tensors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_tensor_is_one_variable_in_both_stores() -> Result<()> {
        let dev = Device::Cpu;
        let (a, b) = (ParamStore::new(), ParamStore::new());
        a.insert(
            "w",
            &Tensor::new(&[1f32, 2.0], &dev)?,
            TensorKind::Parameter,
        )?;
        let h = b.insert(
            "w",
            &Tensor::new(&[5f32, 6.0], &dev)?,
            TensorKind::Parameter,
        )?;
        b.share("w", &a.var("w")?)?;
        let c = ParamStore::new();
        c.insert_shared("enc.w", &a.var("w")?, TensorKind::Parameter)?;
        // A handle built before the share reads the shared value; an update through any
        // store is seen by the others; a gradient through one is the others' variable's.
        assert_eq!(h.tensor().to_vec1::<f32>()?, [1.0, 2.0]);
        c.set("enc.w", &Tensor::new(&[3f32, 4.0], &dev)?)?;
        assert_eq!(b.get("w")?.to_vec1::<f32>()?, [3.0, 4.0]);
        let grads = (h.tensor().sum_all()? * 2.0)?.backward()?;
        assert!(grads.get(c.var("enc.w")?.as_tensor()).is_some());
        let wrong = Tensor::new(&[1f32], &dev)?;
        let other = ParamStore::new();
        other.insert("v", &wrong, TensorKind::Parameter)?;
        assert!(b.share("w", &other.var("v")?).is_err(), "shapes must match");
        Ok(())
    }

    #[test]
    fn frozen_params_get_no_gradient_and_unfreezing_takes_effect() -> Result<()> {
        let dev = Device::Cpu;
        let store = ParamStore::new();
        let w = store.insert(
            "w",
            &Tensor::new(&[1f32, 2.0], &dev)?,
            TensorKind::Parameter,
        )?;
        let b = store.insert("b", &Tensor::new(&[0.5f32], &dev)?, TensorKind::Parameter)?;
        store.set_trainable("w", false)?;
        let loss = (w.tensor().sum_all()? * 3.0)?.add(&b.tensor().sum_all()?)?;
        let grads = loss.backward()?;
        assert!(grads.get(store.var("w")?.as_tensor()).is_none());
        assert!(grads.get(store.var("b")?.as_tensor()).is_some());

        store.set_trainable("w", true)?;
        let loss = (w.tensor().sum_all()? * 3.0)?;
        let grads = loss.backward()?;
        let g = grads
            .get(store.var("w")?.as_tensor())
            .expect("unfrozen w has a gradient");
        assert_eq!(g.to_vec1::<f32>()?, vec![3.0, 3.0]);
        Ok(())
    }

    #[test]
    fn in_place_updates_are_seen_by_frozen_views_and_counts_exclude_buffers() -> Result<()> {
        let dev = Device::Cpu;
        let store = ParamStore::new();
        store.insert(
            "fc.weight",
            &Tensor::zeros((3, 4), DType::F32, &dev)?,
            TensorKind::Parameter,
        )?;
        store.insert(
            "bn.running_mean",
            &Tensor::zeros(4, DType::F32, &dev)?,
            TensorKind::Buffer,
        )?;
        let p = store.param("fc.weight")?;
        store.set_trainable("fc.weight", false)?;
        let before = p.tensor();
        store.set("fc.weight", &Tensor::ones((3, 4), DType::F32, &dev)?)?;
        assert_eq!(before.sum_all()?.to_scalar::<f32>()?, 12.0);
        assert!(store
            .set("fc.weight", &Tensor::ones(4, DType::F32, &dev)?)
            .is_err());
        assert!(store.set_trainable("bn.running_mean", true).is_err());
        assert_eq!(
            store.counts(),
            ParamCounts {
                trainable: 0,
                total: 12
            }
        );
        store.set_trainable("fc.weight", true)?;
        assert_eq!(
            store.counts().to_string(),
            "trainable params: 12 || all params: 12 || trainable%: 100.0000"
        );
        assert_eq!(thousands(22_713_216), "22,713,216");
        Ok(())
    }

    #[test]
    fn save_and_reload_round_trip_with_pt_metadata() -> Result<()> {
        let dev = Device::Cpu;
        let dir = std::env::temp_dir().join(format!("ft-params-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let store = ParamStore::new();
        let w = Tensor::arange(0f32, 6.0, &dev)?.reshape((2, 3))?;
        store.insert("a.weight", &w, TensorKind::Parameter)?;
        store.insert(
            "a.num_batches_tracked",
            &Tensor::new(7i64, &dev)?,
            TensorKind::Buffer,
        )?;
        let path = dir.join("model.safetensors");
        store.save(&path, |n| Some(format!("m.{n}")))?;
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()["format"], "pt");
        let back = ParamStore::from_checkpoint(&dir, &dev, Some(DType::F64))?;
        // Store order is the file's offset order (safetensors sorts by dtype, then name).
        assert_eq!(back.names(), vec!["m.a.num_batches_tracked", "m.a.weight"]);
        assert_eq!(back.kind("m.a.num_batches_tracked")?, TensorKind::Buffer);
        assert_eq!(back.get("m.a.weight")?.dtype(), DType::F64);
        assert_eq!(back.get("m.a.num_batches_tracked")?.dtype(), DType::I64);
        let diff = (back.get("m.a.weight")?.to_dtype(DType::F32)? - &w)?
            .abs()?
            .sum_all()?;
        assert_eq!(diff.to_scalar::<f32>()?, 0.0);
        std::fs::remove_dir_all(&dir).ok();
        Ok(())
    }
}
