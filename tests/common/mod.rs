//! Helpers shared by the end-to-end CLI tests: a tiny random BERT folder, a toy sentiment CSV,
//! per-test temporary folders and a way to run the `finetune` binary.

#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use finetune_bert::naming::expected_tensors;
use finetune_bert::BertConfig;
use finetune_core::nn::init;
use finetune_core::Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The special tokens, then the words the toy sentences are made of.
pub const SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
pub const POSITIVE: [&str; 8] = [
    "good",
    "great",
    "excellent",
    "wonderful",
    "amazing",
    "lovely",
    "fantastic",
    "superb",
];
pub const NEGATIVE: [&str; 8] = [
    "bad", "awful", "terrible", "boring", "poor", "dreadful", "horrible", "dull",
];
pub const NEUTRAL: [&str; 19] = [
    "the", "a", "movie", "film", "plot", "acting", "was", "is", "this", "it", "and", "very",
    "really", "quite", "story", "music", "ending", "cast", "scenes",
];

/// A fresh, empty folder for one test (`tag` keeps tests apart, the pid keeps runs apart).
pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn vocab() -> Vec<&'static str> {
    SPECIAL
        .iter()
        .chain(&POSITIVE)
        .chain(&NEGATIVE)
        .chain(&NEUTRAL)
        .copied()
        .collect()
}

/// A 2-layer BERT with hidden size 16 over [`vocab`], dropout 0.1.
pub fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "model_type": "bert", "architectures": ["BertModel"],
        "vocab_size": vocab().len(), "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 32, "max_position_embeddings": 64,
        "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "pad_token_id": 0
    }))
    .unwrap()
}

/// Writes a base (headless) BERT checkpoint into `dir`: `config.json`, `model.safetensors`
/// with random `bert.*` weights, `vocab.txt` and `tokenizer_config.json`. Returns the weights.
pub fn write_tiny_bert(dir: &Path, seed: u64) -> HashMap<String, Tensor> {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = tiny_config();
    let mut rng = Rng::seed_from_u64(seed);
    let weights: Vec<(String, Tensor)> = expected_tensors(&cfg)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("bert."))
        .map(|(n, shape, _)| {
            let mean = if n.contains("LayerNorm.weight") {
                1.0
            } else {
                0.0
            };
            let t = init::normal(&shape, mean, 0.2, &mut rng, DType::F32, &Device::Cpu).unwrap();
            (n, t)
        })
        .collect();
    finetune_core::safetensors_io::save_tensors(&dir.join("model.safetensors"), &weights).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&cfg).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("vocab.txt"), vocab().join("\n") + "\n").unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"do_lower_case": true, "model_max_length": 64}"#,
    )
    .unwrap();
    weights.into_iter().collect()
}

/// A toy sentence and its label: neutral words around one or two sentiment words of one
/// polarity.
fn sentence(rng: &mut Rng) -> (String, &'static str) {
    let positive = rng.below(2) == 0;
    let pool: &[&str] = if positive { &POSITIVE } else { &NEGATIVE };
    let mut words: Vec<&str> = (0..3 + rng.below(5))
        .map(|_| NEUTRAL[rng.below(NEUTRAL.len() as u64) as usize])
        .collect();
    for _ in 0..1 + rng.below(2) {
        let at = rng.below(words.len() as u64 + 1) as usize;
        words.insert(at, pool[rng.below(pool.len() as u64) as usize]);
    }
    let mut text = words.join(" ");
    if rng.below(3) == 0 {
        // Mixed case, to exercise do_lower_case.
        text = text[..1].to_uppercase() + &text[1..];
    }
    (text, if positive { "pos" } else { "neg" })
}

/// `rows` toy sentiment rows (`text,label`, labels `pos`/`neg`), deterministic in `seed`.
/// Every text is at most 12 tokens with [CLS] and [SEP].
pub fn sentiment_rows(rows: usize, seed: u64) -> Vec<(String, &'static str)> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..rows).map(|_| sentence(&mut rng)).collect()
}

/// Writes [`sentiment_rows`] as a CSV file.
pub fn write_sentiment_csv(path: &Path, rows: usize, seed: u64) {
    let mut body = String::from("text,label\n");
    for (text, label) in sentiment_rows(rows, seed) {
        body += &format!("{text},{label}\n");
    }
    std::fs::write(path, body).unwrap();
}

/// `train --task text-classification --model MODEL --train DATA --output OUT`: the start of
/// the CLI tests' quick text runs; the caller appends the rest.
pub fn text_train_args(model: &Path, data: &Path, out: &Path) -> Vec<String> {
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let mut args: Vec<String> = ["train", "--task", "text-classification", "--model"]
        .map(String::from)
        .into();
    args.push(path(model));
    args.extend(["--train".to_string(), path(data)]);
    args.extend(["--output".to_string(), path(out)]);
    args
}

/// A file or folder under the fetched assets (`CANDLE_FINETUNE_ASSETS`, else the checkout's
/// `assets/`); a missing one fails the test naming the fetch script.
pub fn asset(rel: &str) -> PathBuf {
    let root = std::env::var_os("CANDLE_FINETUNE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"));
    let p = root.join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `scripts/fetch-assets.sh` first (it fetches the test assets)",
        p.display()
    );
    p
}

/// The `logits` row of a `predict --json` object.
pub fn json_logits(p: &serde_json::Value) -> Vec<f64> {
    p["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A multi-label `predict --json` object lists in `labels` exactly the `names` whose sigmoid
/// reaches `threshold`, most likely first.
pub fn assert_threshold_labels(p: &serde_json::Value, names: &[&str], threshold: f64) {
    let probs: Vec<f64> = json_logits(p).into_iter().map(sigmoid).collect();
    let mut want: Vec<(&str, f64)> = names
        .iter()
        .copied()
        .zip(probs.iter().copied())
        .filter(|(_, q)| *q >= threshold)
        .collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    let got: Vec<&str> = p["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(got, want.iter().map(|w| w.0).collect::<Vec<_>>(), "{p}");
}

pub fn finetune_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_finetune"))
}

/// Runs `finetune ARGS` to completion.
pub fn finetune<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    finetune_cmd().args(args).output().expect("run finetune")
}

/// Runs `finetune ARGS`, which must succeed; returns its stdout.
pub fn finetune_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = finetune(args);
    let argv: Vec<_> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
    assert!(
        out.status.success(),
        "finetune {argv:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The tensors of a safetensors file.
pub fn load_tensors(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bits of a float tensor's elements, for exact comparisons.
pub fn bits(t: &Tensor) -> Vec<u32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

pub fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    a.dims() == b.dims() && bits(a) == bits(b)
}

/// A JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Steps of the `checkpoint-STEP` folders under `output`, ascending.
pub fn checkpoint_steps(output: &Path) -> Vec<u64> {
    let mut steps: Vec<u64> = std::fs::read_dir(output)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("checkpoint-")?.parse().ok()
        })
        .collect();
    steps.sort_unstable();
    steps
}

/// Copies the folder `from` (recursively) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Asserts that two safetensors files hold the same tensor names with bit-identical values.
pub fn assert_same_tensors(a: &Path, b: &Path) {
    let (ta, tb) = (load_tensors(a), load_tensors(b));
    let mut na: Vec<&String> = ta.keys().collect();
    let mut nb: Vec<&String> = tb.keys().collect();
    na.sort();
    nb.sort();
    assert_eq!(
        na,
        nb,
        "{} and {} hold different tensors",
        a.display(),
        b.display()
    );
    for n in na {
        assert!(
            same_bits(&ta[n], &tb[n]),
            "{n} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// The environment variables that steer hf-hub (cache, endpoint, token, offline mode) and
/// proxies: a test clears them all and sets only its own.
pub const HUB_ENV: [&str; 14] = [
    "HF_HOME",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "HF_ENDPOINT",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// `finetune ARGS` with the Hub variables set as given and every other [`HUB_ENV`] variable
/// unset.
pub fn finetune_with_hub_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = finetune_cmd();
    cmd.args(args);
    for k in HUB_ENV {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}
