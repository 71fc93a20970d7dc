//! A toy model and data set for the learner's integration tests: a 2-hidden-layer MLP classifier
//! with Hub-like parameter names (`encoder.layer.{0,1}.*`, `classifier.*`) and dropout, over
//! Gaussian blobs that a linear model separates. The model carries test hooks: it counts its
//! training forwards, can inject a NaN or set the learner's interrupt flag at a given forward,
//! and records which parameters reached the autograd graph as variables.

#![allow(dead_code)]

use candle_core::{DType, Device, Module, Tensor};
use finetune_core::nn::{init, linear, Linear};
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{ParamStore, Result, Rng, TensorKind};
use finetune_train::checkpoint::MODEL_FILE;
use finetune_train::{Batch, BatchSource, Problem, TrainConfig, TrainModel};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const INPUT: usize = 4;
pub const HIDDEN: usize = 8;
pub const CLASSES: usize = 3;

pub struct Mlp {
    store: ParamStore,
    layers: [Linear; 2],
    head: Linear,
    dropout: f64,
    rng: Mutex<Rng>,
    /// Training forwards so far (1-based count after each call).
    pub train_forwards: AtomicU64,
    /// Make the logits of this training forward (1-based) NaN.
    pub nan_at_forward: Option<u64>,
    /// Set the flag during this training forward (1-based): the learner stops after that step.
    pub interrupt_at_forward: Mutex<Option<(u64, Arc<AtomicBool>)>>,
    /// Per training forward: the names of the parameters handed out as graph variables.
    pub graph_vars: Mutex<Vec<Vec<String>>>,
}

impl Mlp {
    /// Weights drawn like `torch.nn.Linear`'s from `seed`.
    pub fn new(seed: u64, dropout: f64) -> Self {
        let store = ParamStore::new();
        let mut rng = Rng::seed_from_u64(seed);
        let dims = [
            ("encoder.layer.0", INPUT, HIDDEN),
            ("encoder.layer.1", HIDDEN, HIDDEN),
            ("classifier", HIDDEN, CLASSES),
        ];
        for (prefix, i, o) in dims {
            let (w, b) = init::torch_linear(o, i, &mut rng, DType::F32, &Device::Cpu).unwrap();
            store
                .insert(&format!("{prefix}.weight"), &w, TensorKind::Parameter)
                .unwrap();
            store
                .insert(&format!("{prefix}.bias"), &b, TensorKind::Parameter)
                .unwrap();
        }
        let l = |(p, i, o): (&str, usize, usize)| linear(&store, p, i, o, true).unwrap();
        Self {
            layers: [l(dims[0]), l(dims[1])],
            head: l(dims[2]),
            store,
            dropout,
            rng: Mutex::new(Rng::seed_from_u64(seed ^ 0xd0)),
            train_forwards: AtomicU64::new(0),
            nan_at_forward: None,
            interrupt_at_forward: Mutex::new(None),
            graph_vars: Mutex::new(Vec::new()),
        }
    }

    pub fn param_count() -> usize {
        INPUT * HIDDEN + HIDDEN + HIDDEN * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES
    }

    pub fn interrupt_at(&self, forward: u64, flag: Arc<AtomicBool>) {
        *self.interrupt_at_forward.lock().unwrap() = Some((forward, flag));
    }
}

impl TrainModel for Mlp {
    type Inputs = Tensor;

    fn store(&self) -> &ParamStore {
        &self.store
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if train {
            let n = self.train_forwards.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((at, flag)) = &*self.interrupt_at_forward.lock().unwrap() {
                if *at == n {
                    flag.store(true, Ordering::SeqCst);
                }
            }
            let vars = self
                .store
                .names()
                .into_iter()
                .filter(|name| self.store.get(name).unwrap().is_variable())
                .collect();
            self.graph_vars.lock().unwrap().push(vars);
        }
        let mut h = x.clone();
        for layer in &self.layers {
            h = layer.forward(&h)?.relu()?;
            let mut rng = self.rng.lock().unwrap();
            h = finetune_kernels::ops::dropout(&h, self.dropout, train, &mut rng)?;
        }
        let logits = self.head.forward(&h)?;
        let n = self.train_forwards.load(Ordering::SeqCst);
        if train && self.nan_at_forward == Some(n) {
            return Ok((logits * f64::NAN)?);
        }
        Ok(logits)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor> {
        Ok(finetune_kernels::ops::cross_entropy(
            logits,
            targets,
            label_smoothing,
            None,
        )?)
    }

    fn problem(&self) -> Problem {
        Problem::SingleLabel {
            labels: (0..CLASSES).map(|c| format!("class{c}")).collect(),
        }
    }

    fn layout(&self) -> finetune_core::ParamLayout {
        // `encoder.layer.N.*` at depth N + 1, the head `classifier.*`.
        finetune_core::ParamLayout::new(["classifier.*"], |name| {
            let rest = name.strip_prefix("encoder.layer.")?;
            rest.split('.').next()?.parse::<usize>().ok().map(|n| n + 1)
        })
    }

    fn rng_state(&self) -> Option<Rng> {
        Some(self.rng.lock().unwrap().clone())
    }

    fn set_rng_state(&self, rng: Rng) {
        *self.rng.lock().unwrap() = rng;
    }

    fn export(&self, dir: &Path) -> Result<()> {
        self.store
            .save(&dir.join(MODEL_FILE), |n| Some(n.to_string()))
    }
}

/// Gaussian blobs, one per class, far apart: a linear classifier separates them.
pub struct Blobs {
    x: Vec<f32>,
    y: Vec<u32>,
}

impl Blobs {
    pub fn new(n: usize, seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..n {
            let c = i % CLASSES;
            for d in 0..INPUT {
                let centre = if d % CLASSES == c { 3.0 } else { -1.0 };
                x.push((centre + 0.5 * rng.normal()) as f32);
            }
            y.push(c as u32);
        }
        Self { x, y }
    }

    /// The same inputs with every label moved to the next class: what the model learns on
    /// `self` makes it worse here.
    pub fn relabelled(&self) -> Self {
        Self {
            x: self.x.clone(),
            y: self.y.iter().map(|c| (c + 1) % CLASSES as u32).collect(),
        }
    }
}

impl BatchSource<Tensor> for Blobs {
    fn len(&self) -> usize {
        self.y.len()
    }

    fn batch(&self, indices: &[usize], _epoch: u64, _train: bool) -> Result<Batch<Tensor>> {
        let mut x = Vec::with_capacity(indices.len() * INPUT);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend_from_slice(&self.x[i * INPUT..(i + 1) * INPUT]);
            y.push(self.y[i]);
        }
        Ok(Batch {
            inputs: Tensor::from_vec(x, (indices.len(), INPUT), &Device::Cpu)?,
            targets: Tensor::new(y.as_slice(), &Device::Cpu)?,
            teacher: None,
        })
    }
}

/// A quiet config: no progress bar, a loss record every step.
pub fn config() -> TrainConfig {
    TrainConfig {
        progress: false,
        logging_steps: 1,
        ..TrainConfig::default()
    }
}

pub type Weights = BTreeMap<String, Vec<f32>>;

/// Every tensor of the store, flattened.
pub fn weights(store: &ParamStore) -> Weights {
    store
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// Every tensor of a safetensors file, flattened.
pub fn file_weights(path: &Path) -> Weights {
    let ckpt = Checkpoint::open(path).unwrap();
    ckpt.headers()
        .iter()
        .map(|h| {
            let t = ckpt.load(&h.name, &Device::Cpu).unwrap();
            (h.name.clone(), t.flatten_all().unwrap().to_vec1().unwrap())
        })
        .collect()
}

/// The tensors of `checkpoint-STEP` under `output`.
pub fn checkpoint_weights(output: &Path, step: u64) -> Weights {
    file_weights(&finetune_train::checkpoint::dir_for(output, step).join(MODEL_FILE))
}

/// Bit-level equality, with the first differing tensor in the message.
pub fn assert_bits_eq(a: &Weights, b: &Weights, what: &str) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: names"
    );
    for (name, va) in a {
        let vb = &b[name];
        let same =
            va.len() == vb.len() && va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{what}: `{name}` differs:\n{va:?}\n{vb:?}");
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `output/metrics.jsonl`, one JSON value per line.
pub fn metrics_lines(output: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(output.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect()
}

/// A logged record without its wall-clock fields, for comparing two runs.
pub fn without_timing(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("samples_per_s");
    }
    v
}

/// The names of `checkpoint-*` folders (and anything else) in `output`, sorted.
pub fn entries(output: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(output)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
