//! Step-by-step training loss against transformers. The real all-MiniLM-L6-v2 with a new
//! two-class head fine-tunes on the film-review training data for 30 steps (batch 32, max length
//! 64, dropout 0, AdamW 5e-5 with weight decay 0.01 except biases and LayerNorm weights, linear
//! schedule with 10 % warm-up, gradient clipping at 1.0): every step's training loss must equal
//! the one `transformers` computed for the same initial weights and the same batches, to 1e-4
//! relative. The figures are in `tests/fixtures/loss_parity.json`, made by
//! `scripts/loss-parity.sh` (a throw-away venv with torch and transformers), which runs this
//! test with `FINETUNE_PARITY_DUMP=DIR` to get the run's initial model and batches.

mod common;

use candle_core::Tensor;
use candle_finetune::tasks::text::{TextClassifier, TextModelOptions};
use candle_finetune::train::order::StepOrder;
use candle_finetune::train::{BatchSource, Learner, Metric, TrainConfig};
use common::asset;
use finetune_data::text::{read_tables, TextColumns, TextReadOptions};
use finetune_data::{LabelMap, OnBadSample};
use std::path::Path;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/loss_parity.json"
);
const STEPS: u64 = 30;
const BATCH: usize = 32;

fn config() -> TrainConfig {
    TrainConfig {
        max_steps: Some(STEPS),
        batch_size: BATCH,
        lr: 5e-5,
        weight_decay: 0.01,
        warmup_ratio: Some(0.1),
        max_grad_norm: Some(1.0),
        logging_steps: 1,
        metric: Metric::Loss,
        progress: false,
        seed: 42,
        ..TrainConfig::default()
    }
}

/// Writes what the Python side needs: the initial model (transformers' layout) and every
/// step's batch, in the learner's order.
fn dump(dir: &Path, clf: &TextClassifier, src: &dyn BatchSource<finetune_bert::BertBatch>) {
    clf.model().export_as(&dir.join("init"), None).unwrap();
    let c = config();
    let order = StepOrder {
        samples: src.len(),
        batch_size: c.batch_size,
        grad_accum: c.grad_accum,
        drop_last: c.drop_last,
        seed: c.seed,
    };
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    for step in 0..STEPS {
        let plan = order.plan(step);
        assert_eq!(plan.batches.len(), 1);
        let b = src.batch(&plan.batches[0], plan.epoch, true).unwrap();
        let ids = b.inputs.input_ids.clone();
        let types = b
            .inputs
            .token_type_ids
            .clone()
            .unwrap_or(ids.zeros_like().unwrap());
        let mask = b
            .inputs
            .attention_mask
            .clone()
            .unwrap_or(ids.ones_like().unwrap());
        for (name, t) in [
            ("input_ids", ids),
            ("token_type_ids", types),
            ("attention_mask", mask),
            ("labels", b.targets),
        ] {
            let t = t.to_dtype(candle_core::DType::I64).unwrap();
            tensors.push((format!("step{step}.{name}"), t));
        }
    }
    finetune_core::safetensors_io::save_tensors(&dir.join("plan.safetensors"), &tensors).unwrap();
    let settings = serde_json::json!({
        "steps": STEPS, "lr": c.lr, "weight_decay": c.weight_decay,
        "warmup_steps": finetune_core::schedule::warmup_from_ratio(0.1, STEPS).unwrap(),
        "max_grad_norm": 1.0, "betas": [0.9, 0.999], "eps": 1e-8,
    });
    std::fs::write(dir.join("plan.json"), settings.to_string()).unwrap();
}

#[test]
fn training_loss_equals_transformers_step_by_step() {
    let (model, data) = (asset("minilm"), asset("rotten_tomatoes/train.csv"));
    let read = TextReadOptions {
        columns: TextColumns::default(),
        format: None,
        on_bad: OnBadSample::Error,
        empty_labels: false,
    };
    let table = read_tables(&[data], &read).unwrap();
    let labels = LabelMap::from_names(vec!["fresh".into(), "rotten".into()]).unwrap();
    let records = table.encode(&labels).unwrap().records;
    let opts = TextModelOptions {
        labels: Some(labels.names().to_vec()),
        max_length: Some(64),
        dropout: Some(0.0),
        ..TextModelOptions::default()
    };
    let device = candle_core::Device::Cpu;
    let clf = TextClassifier::load(model.to_str().unwrap(), &opts, &device).unwrap();
    let src = clf.batches(&records);
    if let Some(dir) = std::env::var_os("FINETUNE_PARITY_DUMP") {
        dump(Path::new(&dir), &clf, &src);
    }

    let out = std::env::temp_dir().join(format!("ft-loss-parity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let learner = Learner::new(clf.model(), config(), &out).unwrap();
    learner.fit(&src, None, None).unwrap();
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let ours: Vec<f64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|r| r["loss"].as_f64())
        .collect();
    assert_eq!(ours.len(), STEPS as usize, "one loss record per step");

    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let theirs: Vec<f64> = serde_json::from_value(fixture["losses"].clone()).unwrap();
    assert_eq!(theirs.len(), ours.len());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs() / b.abs())
        .fold(0.0, f64::max);
    let rows: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .enumerate()
        .map(|(k, (a, b))| format!("step {}: ours {a:.7}, transformers {b:.7}", k + 1))
        .collect();
    assert!(
        worst <= 1e-4,
        "largest relative difference {worst:.2e}:\n{}",
        rows.join("\n")
    );
    // The run learns: the last ten steps' mean loss is below the first ten's.
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    assert!(mean(&ours[20..]) < mean(&ours[..10]), "{ours:?}");
    let _ = std::fs::remove_dir_all(&out);
}
