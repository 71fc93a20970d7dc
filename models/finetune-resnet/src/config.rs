//! `ResNetConfig`: the architecture (block kind, blocks and widths per stage), the head
//! (classes, label names, dropout, transformers' `problem_type`) and the preprocessing, read from a timm `config.json`, a
//! transformers `ResNetConfig` `config.json`, or an architecture name; validated up front and
//! written back as a timm `config.json` on export.
//!
//! Only the plain torchvision/timm layout is supported: 7×7/2 stem conv, 3×3/2 max-pool, four
//! stages, stride on the 3×3 conv of a bottleneck ("ResNet v1.5"), 1×1 projection shortcuts,
//! global average pooling, one `fc`. Variants that change the tensors or the computation
//! (`resnet50d`'s deep stem, ResNeXt groups, transformers' `downsample_in_bottleneck`, …) are
//! refused with an error naming the setting.

use crate::preprocess::Preprocessing;
use finetune_core::{Error, ProblemType, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The residual block of every stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convs (ResNet-18/34).
    Basic,
    /// 1×1 → 3×3 (strided) → 1×1 ×4 (ResNet-50/101/152).
    Bottleneck,
}

impl BlockKind {
    /// Output channels per width unit: 1 for basic blocks, 4 for bottlenecks.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// The standard architectures: name, block, blocks per stage.
pub const ARCHITECTURES: [(&str, BlockKind, [usize; 4]); 5] = [
    ("resnet18", BlockKind::Basic, [2, 2, 2, 2]),
    ("resnet34", BlockKind::Basic, [3, 4, 6, 3]),
    ("resnet50", BlockKind::Bottleneck, [3, 4, 6, 3]),
    ("resnet101", BlockKind::Bottleneck, [3, 4, 23, 3]),
    ("resnet152", BlockKind::Bottleneck, [3, 8, 36, 3]),
];

/// The names of [`ARCHITECTURES`] (what timm's `architecture` key holds).
pub const ARCHITECTURE_NAMES: [&str; ARCHITECTURES.len()] = {
    let mut names = [""; ARCHITECTURES.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = ARCHITECTURES[i].0;
        i += 1;
    }
    names
};

/// Stage widths ("planes") and stem width of every standard architecture.
pub const DEFAULT_CHANNELS: [usize; 4] = [64, 128, 256, 512];
/// Output channels of the stem conv in every standard architecture.
pub const DEFAULT_STEM_WIDTH: usize = 64;

/// Top-level `config.json` key of a stem width other than 64. timm's plain stem is always 64
/// wide (its `stem_width` argument sizes deep stems only), so such a model (e.g. a transformers
/// config with another `embedding_size`) round-trips through this crate, but timm and
/// torchvision cannot build it and refuse its weights by shape.
pub const STEM_KEY: &str = "stem_channels";

const MAX_BLOCKS: usize = 256;
const MAX_WIDTH: usize = 1 << 14;
const MAX_CLASSES: usize = 1 << 20;

/// A ResNet's architecture, head and preprocessing: what timm's `config.json` (with
/// `pretrained_cfg`) describes, plus the keys this crate does not interpret, kept for export.
/// Build it with [`ResNetConfig::from_name`] or [`ResNetConfig::from_file`]; every constructor
/// validates ([`ResNetConfig::validate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetConfig {
    /// timm architecture name (`resnet18` … `resnet152`); it fixes the block kind.
    pub architecture: String,
    /// The residual block of every stage, fixed by `architecture`.
    pub block: BlockKind,
    /// Blocks per stage (four stages).
    pub layers: [usize; 4],
    /// Width of each stage (timm's `channels`, torchvision's `planes`); a bottleneck stage
    /// outputs `4 ×` this.
    pub channels: [usize; 4],
    /// Output channels of the stem conv (64 in every timm/torchvision model; other values come
    /// from transformers configs).
    pub stem_width: usize,
    /// Channels of the input images (3 for RGB).
    pub in_chans: usize,
    /// Outputs of `fc`: the number of classes.
    pub num_classes: usize,
    /// Class names in class order, when known.
    pub label_names: Option<Vec<String>>,
    /// Dropout before `fc` in training (timm's `drop_rate`).
    pub drop_rate: f64,
    /// What the logits mean, and so the loss (transformers' `problem_type` key, read from
    /// either config and written at the top of timm's when not single-label, which timm
    /// ignores): single-label (softmax cross-entropy) or multi-label (sigmoid BCE).
    pub problem_type: ProblemType,
    /// Zero the last BatchNorm weight of each residual branch on random initialisation
    /// (torchvision's `zero_init_residual`, timm's `zero_init_last`); no effect on loading.
    pub zero_init_last: bool,
    /// Epsilon of every BatchNorm (PyTorch's 1e-5).
    pub bn_eps: f64,
    /// Running-statistics momentum of every BatchNorm (PyTorch's 0.1).
    pub bn_momentum: f64,
    /// Input size, normalisation, crop and interpolation the weights expect.
    pub preprocessing: Preprocessing,
    /// The source `pretrained_cfg`, minus the keys [`Preprocessing`] owns; written back.
    pub pretrained_cfg: Map<String, Value>,
    /// Other top-level keys of a timm config, written back unchanged.
    pub extra: BTreeMap<String, Value>,
}

impl ResNetConfig {
    /// A standard architecture (`resnet18`, `resnet34`, `resnet50`, `resnet101`, `resnet152`,
    /// optionally with a timm tag such as `resnet50.a1_in1k`) with ImageNet preprocessing.
    pub fn from_name(name: &str, num_classes: usize) -> Result<Self> {
        let base = name.split('.').next().unwrap_or(name);
        let (arch, block, layers) = ARCHITECTURES
            .iter()
            .find(|(n, _, _)| *n == base)
            .ok_or_else(|| {
                Error::config(format!(
                    "architecture `{name}` is not supported: expected one of {} (plain \
                     torchvision layout; variants such as resnet50d or resnext are not)",
                    ARCHITECTURES.map(|a| a.0).join(", ")
                ))
            })?;
        let c = Self {
            architecture: arch.to_string(),
            block: *block,
            layers: *layers,
            channels: DEFAULT_CHANNELS,
            stem_width: DEFAULT_STEM_WIDTH,
            in_chans: 3,
            num_classes,
            label_names: None,
            drop_rate: 0.0,
            problem_type: ProblemType::SingleLabelClassification,
            zero_init_last: false,
            bn_eps: 1e-5,
            bn_momentum: 0.1,
            preprocessing: Preprocessing::default(),
            pretrained_cfg: Map::new(),
            extra: BTreeMap::new(),
        };
        c.validate()?;
        Ok(c)
    }

    /// Reads `config.json` in timm's format or transformers' (`model_type: "resnet"`); for the
    /// latter, `preprocessor_config.json` next to it supplies the preprocessing. Errors name
    /// the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let err = |msg: String| Error::Record {
            path: path.to_path_buf(),
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| err("expected a JSON object".into()))?;
        let is_transformers = obj.get("model_type").and_then(Value::as_str) == Some("resnet")
            || obj.contains_key("hidden_sizes")
            || obj.contains_key("depths");
        let cfg = if is_transformers {
            let pre = path.with_file_name("preprocessor_config.json");
            let pre = if pre.is_file() {
                Some(Preprocessing::from_preprocessor_config(&pre)?)
            } else {
                None
            };
            Self::from_transformers_json(obj, pre)
        } else {
            Self::from_timm_json(obj)
        };
        cfg.map_err(|e| err(e.to_string()))
    }

    /// A timm `config.json` (`architecture`, `num_classes`, `label_names`, `model_args`,
    /// `pretrained_cfg`; also the legacy single-dict form without `pretrained_cfg`).
    pub fn from_timm_json(obj: &Map<String, Value>) -> Result<Self> {
        let mut top = obj.clone();
        let mut pcfg = match top.remove("pretrained_cfg") {
            Some(Value::Object(m)) => m,
            Some(_) => return Err(Error::config("`pretrained_cfg` must be an object")),
            None => {
                // Legacy form: everything but a few keys is the pretrained_cfg.
                let mut p = Map::new();
                for (k, v) in std::mem::take(&mut top) {
                    match k.as_str() {
                        "architecture" | "num_features" | "num_classes" | "model_args"
                        | "problem_type" => {
                            top.insert(k, v);
                        }
                        "labels" => {
                            top.insert("label_names".into(), v);
                        }
                        _ => {
                            p.insert(k, v);
                        }
                    }
                }
                p
            }
        };
        let arch = top
            .remove("architecture")
            .or_else(|| pcfg.remove("architecture"))
            .and_then(|v| v.as_str().map(String::from))
            .ok_or_else(|| Error::config("missing `architecture` (e.g. \"resnet50\")"))?;
        let labels = top
            .remove("label_names")
            .or_else(|| pcfg.remove("label_names"));
        let num_classes = match top
            .remove("num_classes")
            .or_else(|| pcfg.get("num_classes").cloned())
        {
            Some(v) => as_usize(&v, "num_classes")?,
            None => match &labels {
                Some(Value::Array(a)) => a.len(),
                _ => 1000,
            },
        };
        let mut c = Self::from_name(&arch, num_classes)?;
        top.remove("num_features"); // derived
        c.problem_type = parse_problem_type(top.remove("problem_type"))?;
        if let Some(v) = top.remove(STEM_KEY) {
            c.stem_width = as_usize(&v, STEM_KEY)?;
        }
        if let Some(l) = labels {
            c.label_names = Some(parse_label_names(&l, num_classes)?);
        }
        if let Some(args) = top.remove("model_args") {
            let args = args
                .as_object()
                .ok_or_else(|| Error::config("`model_args` must be an object"))?;
            c.apply_model_args(args)?;
        }
        if let Some(Value::String(p)) = top.get("global_pool") {
            if p != "avg" {
                return Err(Error::config(format!(
                    "global_pool `{p}` is not supported (only `avg`)"
                )));
            }
        }
        c.preprocessing = Preprocessing::from_pretrained_cfg(&pcfg, c.in_chans)?;
        for k in Preprocessing::KEYS {
            pcfg.remove(*k);
        }
        c.pretrained_cfg = pcfg;
        c.extra = top.into_iter().collect();
        c.validate()?;
        Ok(c)
    }

    /// timm `create_model` keyword arguments this crate understands; settings that would change
    /// the network are refused unless they hold their default value.
    fn apply_model_args(&mut self, args: &Map<String, Value>) -> Result<()> {
        for (k, v) in args {
            match k.as_str() {
                "layers" => self.layers = as_four(v, k)?,
                "channels" => self.channels = as_four(v, k)?,
                // timm sizes only deep stems with it; a plain 7×7 stem is always 64 wide there.
                "stem_width" => {
                    as_usize(v, k)?;
                }
                "in_chans" => self.in_chans = as_usize(v, k)?,
                "num_classes" => {
                    if as_usize(v, k)? != self.num_classes {
                        return Err(Error::config(
                            "model_args.num_classes disagrees with num_classes",
                        ));
                    }
                }
                "drop_rate" => {
                    self.drop_rate = v
                        .as_f64()
                        .ok_or_else(|| Error::config("`drop_rate` must be a number"))?
                }
                "zero_init_last" => {
                    self.zero_init_last = v
                        .as_bool()
                        .ok_or_else(|| Error::config("`zero_init_last` must be a boolean"))?
                }
                _ => {
                    let default = match k.as_str() {
                        "global_pool" => json!("avg"),
                        "output_stride" => json!(32),
                        "cardinality" | "block_reduce_first" | "down_kernel_size" => json!(1),
                        "base_width" => json!(64),
                        "stem_type" => json!(""),
                        "avg_down" | "replace_stem_pool" => json!(false),
                        "drop_path_rate" | "drop_block_rate" => json!(0.0),
                        _ => {
                            return Err(Error::config(format!(
                                "model_args.{k} is not supported by this ResNet"
                            )))
                        }
                    };
                    let same = match (v.as_f64(), default.as_f64()) {
                        (Some(a), Some(b)) => a == b,
                        _ => *v == default,
                    };
                    if !same {
                        return Err(Error::config(format!(
                            "model_args.{k} = {v} is not supported (only {default})"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// A transformers `ResNetConfig` (`layer_type`, `depths`, `hidden_sizes`, `embedding_size`,
    /// `id2label`), mapped onto the torchvision layout.
    pub fn from_transformers_json(
        obj: &Map<String, Value>,
        preprocessing: Option<Preprocessing>,
    ) -> Result<Self> {
        let get = |k: &str| obj.get(k);
        let block = match get("layer_type")
            .and_then(Value::as_str)
            .unwrap_or("bottleneck")
        {
            "basic" => BlockKind::Basic,
            "bottleneck" => BlockKind::Bottleneck,
            other => {
                return Err(Error::config(format!(
                    "layer_type `{other}` is not supported (basic or bottleneck)"
                )))
            }
        };
        let layers = match get("depths") {
            Some(v) => as_four(v, "depths")?,
            None => [3, 4, 6, 3],
        };
        let hidden = match get("hidden_sizes") {
            Some(v) => as_four(v, "hidden_sizes")?,
            None => [256, 512, 1024, 2048],
        };
        let e = block.expansion();
        if hidden.iter().any(|h| h % e != 0) {
            return Err(Error::config(format!(
                "hidden_sizes {hidden:?} are not multiples of the bottleneck expansion {e}"
            )));
        }
        for (k, bad) in [
            ("downsample_in_first_stage", true),
            ("downsample_in_bottleneck", true),
        ] {
            if get(k).and_then(Value::as_bool) == Some(bad) {
                return Err(Error::config(format!(
                    "`{k}: true` is not supported (not the torchvision layout)"
                )));
            }
        }
        if let Some(act) = get("hidden_act").and_then(Value::as_str) {
            if act != "relu" {
                return Err(Error::config(format!(
                    "hidden_act `{act}` is not supported (only relu)"
                )));
            }
        }
        let channels = hidden.map(|h| h / e);
        let stem_width = match get("embedding_size") {
            Some(v) => as_usize(v, "embedding_size")?,
            None => DEFAULT_STEM_WIDTH,
        };
        let in_chans = match get("num_channels") {
            Some(v) => as_usize(v, "num_channels")?,
            None => 3,
        };
        let labels = match get("id2label") {
            Some(Value::Object(m)) => Some(parse_label_names(&Value::Object(m.clone()), m.len())?),
            _ => None,
        };
        let num_classes = match (&labels, get("num_labels")) {
            (Some(l), _) => l.len(),
            (None, Some(v)) => as_usize(v, "num_labels")?,
            (None, None) => 2,
        };
        // The standard name with these blocks, else the block's smallest (the geometry then
        // travels in `model_args` on export).
        let arch = ARCHITECTURES
            .iter()
            .find(|(_, b, l)| *b == block && *l == layers)
            .or_else(|| ARCHITECTURES.iter().find(|(_, b, _)| *b == block))
            .map(|a| a.0)
            .unwrap_or("resnet50");
        let mut c = Self::from_name(arch, num_classes)?;
        c.layers = layers;
        c.channels = channels;
        c.stem_width = stem_width;
        c.in_chans = in_chans;
        c.label_names = labels;
        c.problem_type = parse_problem_type(get("problem_type").cloned())?;
        c.preprocessing = preprocessing.unwrap_or_else(|| Preprocessing::imagenet(in_chans));
        c.validate()?;
        Ok(c)
    }

    /// Refuses a configuration the model cannot be built from: an architecture name that does
    /// not match the block kind, a stage with 0 or absurdly many blocks, a width, `in_chans`
    /// or class count of 0 or absurdly large, label names not one per class, `drop_rate`
    /// outside `[0, 1)`, `bn_eps <= 0`, `bn_momentum` outside `[0, 1]`, preprocessing for
    /// another channel count. Errors are [`Error::Config`].
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::config(m));
        if !ARCHITECTURES
            .iter()
            .any(|(n, b, _)| *n == self.architecture && *b == self.block)
        {
            return bad(format!(
                "architecture `{}` does not name a {:?}-block ResNet",
                self.architecture, self.block
            ));
        }
        if self.layers.iter().any(|&l| l == 0 || l > MAX_BLOCKS) {
            return bad(format!(
                "`layers` {:?}: every stage needs 1..={MAX_BLOCKS} blocks",
                self.layers
            ));
        }
        for (k, v) in self
            .channels
            .iter()
            .map(|c| ("channels", *c))
            .chain([("stem_width", self.stem_width), ("in_chans", self.in_chans)])
        {
            if v == 0 || v > MAX_WIDTH {
                return bad(format!("`{k}` {v}: expected 1..={MAX_WIDTH}"));
            }
        }
        if self.num_classes == 0 || self.num_classes > MAX_CLASSES {
            return bad(format!(
                "num_classes {}: expected 1..={MAX_CLASSES} (a classifier head is required)",
                self.num_classes
            ));
        }
        if let Some(l) = &self.label_names {
            if l.len() != self.num_classes {
                return bad(format!(
                    "{} label names for {} classes",
                    l.len(),
                    self.num_classes
                ));
            }
        }
        if self.problem_type == ProblemType::Regression {
            return bad(
                "problem_type regression is not supported: a ResNet here classifies \
                 (single_label_classification or multi_label_classification)"
                    .into(),
            );
        }
        if !(0.0..1.0).contains(&self.drop_rate) {
            return bad(format!(
                "drop_rate {}: expected a probability in [0, 1)",
                self.drop_rate
            ));
        }
        if !finetune_core::error::positive(self.bn_eps) || !(0.0..=1.0).contains(&self.bn_momentum)
        {
            return bad("`bn_eps` must be > 0 and `bn_momentum` in [0, 1]".into());
        }
        if self.preprocessing.input_size[0] != self.in_chans {
            return bad(format!(
                "preprocessing input_size {:?} disagrees with in_chans {}",
                self.preprocessing.input_size, self.in_chans
            ));
        }
        Ok(())
    }

    /// Channels entering `fc`.
    pub fn num_features(&self) -> usize {
        self.channels[3] * self.block.expansion()
    }

    /// Label names in class order (`LABEL_i` where none are known).
    pub fn labels(&self) -> Vec<String> {
        self.label_names.clone().unwrap_or_else(|| {
            (0..self.num_classes)
                .map(|i| format!("LABEL_{i}"))
                .collect()
        })
    }

    /// Sets the classes: their number and names.
    pub fn set_labels<S: AsRef<str>>(&mut self, labels: &[S]) {
        self.num_classes = labels.len();
        self.label_names = Some(labels.iter().map(|l| l.as_ref().to_string()).collect());
    }

    /// The timm `create_model` arguments that differ from the architecture's defaults.
    pub fn model_args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let (_, _, layers) = ARCHITECTURES
            .iter()
            .find(|a| a.0 == self.architecture)
            .expect("validated architecture");
        if self.layers != *layers {
            m.insert("layers".into(), json!(self.layers));
        }
        if self.channels != DEFAULT_CHANNELS {
            m.insert("channels".into(), json!(self.channels));
        }
        if self.in_chans != 3 {
            m.insert("in_chans".into(), json!(self.in_chans));
        }
        if self.drop_rate > 0.0 {
            m.insert("drop_rate".into(), json!(self.drop_rate));
        }
        m
    }

    /// The `config.json` of an export, in timm's format: what `timm.create_model` reads with
    /// `pretrained_cfg_overlay`, and what [`Self::from_timm_json`] reads back.
    pub fn to_timm_json(&self) -> Value {
        let mut pcfg = self.pretrained_cfg.clone();
        // Where the source weights came from no longer describes these weights.
        for k in [
            "url",
            "file",
            "hf_hub_id",
            "hf_hub_filename",
            "source",
            "state_dict",
            "label_names",
            "label_descriptions",
            "label_offset",
            "architecture",
        ] {
            pcfg.remove(k);
        }
        for (k, v) in self.preprocessing.to_pretrained_cfg() {
            pcfg.insert(k, v);
        }
        let [_, h, w] = self.preprocessing.input_size;
        pcfg.insert("num_classes".into(), json!(self.num_classes));
        pcfg.insert("pool_size".into(), json!([h.div_ceil(32), w.div_ceil(32)]));
        pcfg.insert("first_conv".into(), json!("conv1"));
        pcfg.insert("classifier".into(), json!("fc"));
        pcfg.insert("fixed_input_size".into(), json!(false));
        pcfg.insert("custom_load".into(), json!(false));
        let mut out = Map::new();
        for (k, v) in &self.extra {
            out.insert(k.clone(), v.clone());
        }
        out.insert("architecture".into(), json!(self.architecture));
        out.insert("num_classes".into(), json!(self.num_classes));
        out.insert("num_features".into(), json!(self.num_features()));
        out.insert("global_pool".into(), json!("avg"));
        out.insert("label_names".into(), json!(self.labels()));
        if self.problem_type == ProblemType::SingleLabelClassification {
            out.remove("problem_type");
        } else {
            out.insert("problem_type".into(), json!(self.problem_type.as_str()));
        }
        if self.stem_width != DEFAULT_STEM_WIDTH {
            out.insert(STEM_KEY.into(), json!(self.stem_width));
        } else {
            out.remove(STEM_KEY);
        }
        let args = self.model_args();
        if args.is_empty() {
            out.remove("model_args");
        } else {
            out.insert("model_args".into(), Value::Object(args));
        }
        out.insert("pretrained_cfg".into(), Value::Object(pcfg));
        Value::Object(out)
    }
}

/// A config's `problem_type`: absent or `null` is single-label (transformers' default for a
/// head of several classes).
fn parse_problem_type(v: Option<Value>) -> Result<ProblemType> {
    match v {
        None | Some(Value::Null) => Ok(ProblemType::SingleLabelClassification),
        Some(Value::String(s)) => s.parse(),
        Some(other) => Err(Error::config(format!(
            "`problem_type` must be a string, got {other}"
        ))),
    }
}

fn as_usize(v: &Value, k: &str) -> Result<usize> {
    v.as_u64()
        .map(|x| x as usize)
        .ok_or_else(|| Error::config(format!("`{k}` must be a non-negative integer, got {v}")))
}

fn as_four(v: &Value, k: &str) -> Result<[usize; 4]> {
    let a = v
        .as_array()
        .ok_or_else(|| Error::config(format!("`{k}` must be a list of 4 integers, got {v}")))?;
    let xs = a
        .iter()
        .map(|x| as_usize(x, k))
        .collect::<Result<Vec<_>>>()?;
    xs.try_into().map_err(|_| {
        Error::config(format!(
            "`{k}` must list 4 stages, got {v} (only four-stage ResNets are supported)"
        ))
    })
}

/// Label names as a list, or as an `{index: name}` object (timm and transformers' `id2label`);
/// gaps in an object become `LABEL_i`.
fn parse_label_names(v: &Value, n: usize) -> Result<Vec<String>> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| Error::config(format!("label name {x} is not a string")))
            })
            .collect(),
        Value::Object(m) => {
            let mut out: Vec<String> = (0..n).map(|i| format!("LABEL_{i}")).collect();
            for (k, name) in m {
                let i = k.parse::<usize>().ok().filter(|&i| i < n).ok_or_else(|| {
                    Error::config(format!("label key `{k}` is not a class index 0..{n}"))
                })?;
                out[i] = name
                    .as_str()
                    .ok_or_else(|| Error::config(format!("label name {name} is not a string")))?
                    .to_string();
            }
            Ok(out)
        }
        other => Err(Error::config(format!(
            "label names must be a list or an object, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timm(v: Value) -> Result<ResNetConfig> {
        ResNetConfig::from_timm_json(v.as_object().unwrap())
    }

    #[test]
    fn timm_hub_config_with_preprocessing_and_labels() -> Result<()> {
        let c = timm(json!({
            "architecture": "resnet50",
            "num_classes": 3,
            "num_features": 2048,
            "label_names": ["cat", "dog", "eel"],
            "pretrained_cfg": {
                "tag": "a1_in1k", "input_size": [3, 288, 288], "interpolation": "bicubic",
                "crop_pct": 0.95, "crop_mode": "center", "mean": [0.5, 0.5, 0.5],
                "std": [0.25, 0.25, 0.25], "num_classes": 3, "first_conv": "conv1",
                "classifier": "fc", "hf_hub_id": "timm/resnet50.a1_in1k"
            }
        }))?;
        assert_eq!(c.block, BlockKind::Bottleneck);
        assert_eq!(c.layers, [3, 4, 6, 3]);
        assert_eq!(c.num_features(), 2048);
        assert_eq!(c.labels(), vec!["cat", "dog", "eel"]);
        assert_eq!(c.preprocessing.input_size, [3, 288, 288]);
        assert_eq!(c.preprocessing.interpolation, "bicubic");
        assert_eq!(c.preprocessing.crop_pct, 0.95);
        let out = c.to_timm_json();
        assert_eq!(out["architecture"], "resnet50");
        assert_eq!(out["num_features"], 2048);
        assert_eq!(out["label_names"], json!(["cat", "dog", "eel"]));
        assert_eq!(out["pretrained_cfg"]["tag"], "a1_in1k");
        assert_eq!(out["pretrained_cfg"]["pool_size"], json!([9, 9]));
        assert!(out["pretrained_cfg"].get("hf_hub_id").is_none());
        assert!(out.get("model_args").is_none());
        let back = timm(out)?;
        assert_eq!(back.preprocessing, c.preprocessing);
        assert_eq!(back.labels(), c.labels());
        Ok(())
    }

    #[test]
    fn multi_label_problem_type_round_trips_in_both_configs() -> Result<()> {
        let c = timm(json!({"architecture": "resnet18", "num_classes": 3}))?;
        assert_eq!(c.problem_type, ProblemType::SingleLabelClassification);
        assert!(c.to_timm_json().get("problem_type").is_none());
        let c = timm(json!({"architecture": "resnet18", "num_classes": 3,
                            "problem_type": "multi_label_classification"}))?;
        assert_eq!(c.problem_type, ProblemType::MultiLabelClassification);
        let out = c.to_timm_json();
        assert_eq!(out["problem_type"], "multi_label_classification");
        assert_eq!(timm(out)?.problem_type, c.problem_type);
        let v = json!({"model_type": "resnet", "problem_type": "multi_label_classification"});
        let t = ResNetConfig::from_transformers_json(v.as_object().unwrap(), None)?;
        assert_eq!(t.problem_type, ProblemType::MultiLabelClassification);
        let v = json!({"model_type": "resnet", "problem_type": null});
        let t = ResNetConfig::from_transformers_json(v.as_object().unwrap(), None)?;
        assert_eq!(t.problem_type, ProblemType::SingleLabelClassification);
        let e = timm(json!({"architecture": "resnet18", "problem_type": "regression"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("regression"), "{e}");
        Ok(())
    }

    #[test]
    fn custom_geometry_travels_in_model_args() -> Result<()> {
        let c = timm(json!({
            "architecture": "resnet18", "num_classes": 4,
            "model_args": {"layers": [1, 1, 2, 1], "channels": [4, 8, 8, 16], "stem_width": 4,
                           "in_chans": 1, "global_pool": "avg", "cardinality": 1},
            "stem_channels": 8,
            "pretrained_cfg": {"input_size": [1, 32, 32], "mean": [0.3], "std": [0.2]}
        }))?;
        assert_eq!(c.layers, [1, 1, 2, 1]);
        assert_eq!(c.in_chans, 1);
        // timm's `stem_width` sizes deep stems only: the plain stem width is our own key.
        assert_eq!(c.stem_width, 8);
        assert_eq!(c.num_features(), 16);
        let back = timm(c.to_timm_json())?;
        assert_eq!(
            (back.layers, back.channels, back.stem_width, back.in_chans),
            (c.layers, c.channels, c.stem_width, c.in_chans)
        );
        assert_eq!(back.preprocessing, c.preprocessing);
        Ok(())
    }

    #[test]
    fn transformers_config_maps_to_the_torchvision_layout() -> Result<()> {
        let v = json!({
            "model_type": "resnet", "layer_type": "basic", "depths": [2, 2, 2, 2],
            "hidden_sizes": [64, 128, 256, 512], "embedding_size": 64,
            "id2label": {"0": "a", "1": "b"}, "downsample_in_first_stage": false
        });
        let c = ResNetConfig::from_transformers_json(v.as_object().unwrap(), None)?;
        assert_eq!(c.architecture, "resnet18");
        assert_eq!(c.labels(), vec!["a", "b"]);
        let v = json!({"model_type": "resnet", "depths": [3, 4, 23, 3]});
        let c = ResNetConfig::from_transformers_json(v.as_object().unwrap(), None)?;
        assert_eq!(
            (c.architecture.as_str(), c.channels),
            ("resnet101", [64, 128, 256, 512])
        );
        assert_eq!(c.num_classes, 2);
        Ok(())
    }

    #[test]
    fn unsupported_settings_are_named() {
        for (v, needle) in [
            (json!({"architecture": "resnet50d"}), "resnet50d"),
            (
                json!({"architecture": "resnet18", "model_args": {"stem_type": "deep"}}),
                "stem_type",
            ),
            (
                json!({"architecture": "resnet18", "model_args": {"cardinality": 32}}),
                "cardinality",
            ),
            (
                json!({"architecture": "resnet18", "model_args": {"layers": [1, 1, 1]}}),
                "4 stages",
            ),
            (
                json!({"architecture": "resnet18", "num_classes": 2, "label_names": ["a"]}),
                "label names",
            ),
            (
                json!({"architecture": "resnet18", "model_args": {"drop_rate": 1.0}}),
                "drop_rate",
            ),
            (
                json!({"architecture": "resnet18", "model_args": {"channels": [0, 1, 1, 1]}}),
                "channels",
            ),
            (json!({"num_classes": 2}), "architecture"),
        ] {
            let e = timm(v.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{v}: {e}");
        }
        for (v, needle) in [
            (
                json!({"model_type": "resnet", "downsample_in_bottleneck": true}),
                "downsample_in_bottleneck",
            ),
            (
                json!({"model_type": "resnet", "hidden_act": "gelu"}),
                "gelu",
            ),
            (
                json!({"model_type": "resnet", "depths": [1, 1]}),
                "4 stages",
            ),
        ] {
            let e = ResNetConfig::from_transformers_json(v.as_object().unwrap(), None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }
}
