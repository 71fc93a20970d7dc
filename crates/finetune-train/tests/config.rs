//! `TrainConfig` from TOML: native names and transformers' `TrainingArguments` aliases read the
//! same; unknown keys and invalid values are clear errors.

use finetune_core::{OptimizerKind, ScheduleKind};
use finetune_train::{Metric, TrainConfig};
use std::path::Path;

fn parse(text: &str) -> finetune_core::Result<TrainConfig> {
    TrainConfig::from_toml(Path::new("run.toml"), text)
}

fn parse_err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("accepted {text:?} as {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn invalid(c: TrainConfig) -> String {
    c.validate()
        .err()
        .unwrap_or_else(|| panic!("validated {c:?}"))
        .to_string()
}

const NATIVE: &str = r#"
lr = 2e-5
epochs = 3
batch_size = 32
eval_batch_size = 128
grad_accum = 2
warmup_ratio = 0.1
weight_decay = 0.01
schedule = "cosine"
optimizer = "adamw"
eps = 1e-6
label_smoothing = 0.1
metric = "f1"
load_best_at_end = true
drop_last = true
"#;

const HF: &str = r#"
learning_rate = 2e-5
num_train_epochs = 3
per_device_train_batch_size = 32
per_device_eval_batch_size = 128
gradient_accumulation_steps = 2
warmup_ratio = 0.1
weight_decay = 0.01
lr_scheduler_type = "cosine"
optim = "adamw"
adam_epsilon = 1e-6
label_smoothing_factor = 0.1
metric_for_best_model = "f1"
load_best_model_at_end = true
dataloader_drop_last = true
"#;

#[test]
fn transformers_names_read_like_native_names() {
    let native = parse(NATIVE).unwrap();
    let hf = parse(HF).unwrap();
    assert_eq!(native, hf);
    let want = TrainConfig {
        lr: 2e-5,
        epochs: 3,
        batch_size: 32,
        eval_batch_size: 128,
        grad_accum: 2,
        warmup_ratio: Some(0.1),
        weight_decay: 0.01,
        schedule: ScheduleKind::Cosine,
        optimizer: OptimizerKind::AdamW,
        eps: Some(1e-6),
        label_smoothing: 0.1,
        metric: Metric::F1,
        load_best_at_end: true,
        drop_last: true,
        ..TrainConfig::default()
    };
    assert_eq!(native, want);
    native.validate().unwrap();
    assert!(native.greater_is_better());
    // Unset keys keep their defaults.
    assert_eq!(parse("").unwrap(), TrainConfig::default());
    TrainConfig::default().validate().unwrap();
}

#[test]
fn a_whole_float_epoch_count_reads_as_transformers_writes_it() {
    // `TrainingArguments.num_train_epochs` is a float (3.0 in a saved config).
    assert_eq!(parse("num_train_epochs = 3.0").unwrap().epochs, 3);
    assert_eq!(parse("epochs = 2").unwrap().epochs, 2);
    let err = parse_err("num_train_epochs = 2.5");
    assert!(err.contains("2.5") && err.contains("whole"), "{err}");
    let err = parse_err("epochs = -1.0");
    assert!(err.contains("-1"), "{err}");
}

#[test]
fn unknown_keys_and_wrong_types_are_errors_naming_them() {
    let err = parse_err("learning_rate = 1e-4\nlearnin_rate_typo = 3\n");
    assert!(err.contains("learnin_rate_typo"), "{err}");
    assert!(err.contains("run.toml"), "the file is named: {err}");
    assert!(err.contains("lr"), "the known keys are listed: {err}");
    let err = parse_err("batch_size = \"big\"");
    assert!(err.contains("big") || err.contains("string"), "{err}");
    let err = parse_err("grad_accum = -2");
    assert!(err.contains("-2"), "{err}");
    let err = parse_err("lr = 1e-4\nlearning_rate = 2e-4\n");
    assert!(
        err.contains("duplicate"),
        "a key given twice (by its alias): {err}"
    );
    let err = parse_err("lr = ");
    assert!(err.contains("not valid TOML"), "{err}");
    // Names are checked as they are read, with the valid ones listed.
    let err = parse_err("metric = \"auc\"");
    assert!(err.contains("auc") && err.contains("accuracy"), "{err}");
    let err = parse_err("optimizer = \"adamax\"");
    assert!(err.contains("adamax") && err.contains("adamw"), "{err}");
    let err = parse_err("schedule = \"sine\"");
    assert!(err.contains("unknown schedule `sine`"), "{err}");
    // A typo gets the nearest key.
    let err = parse_err("learnig_rate = 1e-4");
    assert!(err.contains("did you mean \"learning_rate\""), "{err}");
}

#[test]
fn invalid_values_fail_validation_clearly() {
    type Edit = fn(&mut TrainConfig);
    let cases: [(Edit, &[&str]); 19] = [
        (|c| c.lr = -1e-3, &["--lr", "-0.001"]),
        (|c| c.lr = f64::NAN, &["--lr"]),
        (|c| c.grad_accum = 0, &["--grad-accum"]),
        (|c| c.batch_size = 0, &["batch"]),
        (|c| c.max_steps = Some(0), &["--max-steps"]),
        (|c| c.epochs = 0, &["--epochs"]),
        (|c| c.weight_decay = -0.1, &["--weight-decay", "-0.1"]),
        (|c| c.warmup_ratio = Some(1.5), &["--warmup-ratio", "1.5"]),
        (
            |c| (c.warmup_ratio, c.warmup_steps) = (Some(0.1), Some(10)),
            &["--warmup-steps", "--warmup-ratio"],
        ),
        (|c| c.head_lr = Some(0.0), &["--head-lr"]),
        (|c| c.layer_lr_decay = Some(1.5), &["--layer-lr-decay"]),
        (|c| c.label_smoothing = 1.0, &["--label-smoothing"]),
        (|c| c.max_grad_norm = Some(-1.0), &["--max-grad-norm"]),
        (|c| c.save_steps = Some(0), &["--save-steps"]),
        (|c| c.save_total_limit = Some(0), &["--save-total-limit"]),
        (|c| c.betas = Some(vec![0.9]), &["--betas", "0.9"]),
        (
            |c| (c.nesterov, c.optimizer) = (true, OptimizerKind::AdamW),
            &["--nesterov"],
        ),
        (
            |c| c.unfreeze_schedule = Some("one:encoder.*".into()),
            &["one"],
        ),
        (|c| c.l2 = -1.0, &["--l2"]),
    ];
    for (edit, needles) in cases {
        let mut c = TrainConfig::default();
        edit(&mut c);
        let err = invalid(c);
        for n in needles {
            assert!(err.contains(n), "`{n}` not in: {err}");
        }
    }

    // A value read from a file (under its alias) fails the same check.
    let c = parse("learning_rate = -0.5").unwrap();
    let err = invalid(c);
    assert!(err.contains("--lr must be > 0, got -0.5"), "{err}");
}

#[test]
fn schedule_config_takes_warmup_from_steps_or_ratio() {
    let c = TrainConfig {
        warmup_ratio: Some(0.1),
        ..TrainConfig::default()
    };
    assert_eq!(c.schedule_config(95).unwrap().warmup_steps, 10, "ceil(9.5)");
    let c = TrainConfig {
        warmup_steps: Some(7),
        ..TrainConfig::default()
    };
    assert_eq!(c.schedule_config(95).unwrap().warmup_steps, 7);
    assert_eq!(
        TrainConfig::default()
            .schedule_config(95)
            .unwrap()
            .warmup_steps,
        0
    );
    assert!(
        !TrainConfig::default().greater_is_better(),
        "loss: lower is better"
    );
}
