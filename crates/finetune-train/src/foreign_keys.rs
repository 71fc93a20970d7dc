//! Settings-file keys that transformers users write and this trainer has no setting for: each
//! gets a pointed message (what to use instead, or why it is not needed) rather than the list
//! of known keys. Keys this trainer supports are clap aliases of its settings, not listed here.

/// `(transformers' key, what to do instead)`. Backticked names are this trainer's keys (the
/// `finetune` binary shows them as flags).
const FOREIGN: &[(&str, &str)] = &[
    ("logging_strategy", "a training record is written every `logging_steps` steps"),
    ("save_strategy", "checkpoints are saved every `save_steps` steps and at the end"),
    ("save_safetensors", "checkpoints and exports are always safetensors"),
    ("tf32", "training runs in f32"),
    ("half_precision_backend", "training runs in f32"),
    ("gradient_checkpointing", "activations are kept for the backward pass"),
    ("hub_strategy", "the final model is pushed once, at the end (`push_to_hub`); checkpoints are not pushed"),
    ("hub_token", "a token is never kept in a settings file (they are recorded in run_config.json): give --hub-token or set HF_TOKEN"),
    ("do_train", "not needed: `train` trains, evaluates on the eval data when given and tests on the test data"),
    ("do_eval", "not needed: evaluation runs when eval data is given (`eval`, `validation_split`)"),
    ("do_predict", "not needed: the test data (`test`) is evaluated after training; `finetune predict` predicts"),
    ("adam_beta1", "use `betas` (both values, e.g. [0.9, 0.999])"),
    ("adam_beta2", "use `betas` (both values, e.g. [0.9, 0.999])"),
    ("greater_is_better", "follows from `metric` (loss: lower is better; the others: higher)"),
    ("lr_scheduler_kwargs", "give the schedule's own keys (`min_lr`, `num_cycles`, ...)"),
    ("per_gpu_train_batch_size", "use `batch_size`"),
    ("per_gpu_eval_batch_size", "use `eval_batch_size`"),
    ("no_cuda", "use `device` (cpu)"),
    ("use_cpu", "use `device` (cpu)"),
    ("dataloader_num_workers", "not needed: batches are prepared on a background thread"),
    ("dataloader_pin_memory", "not needed"),
    ("remove_unused_columns", "not needed: only the named columns are read"),
    ("label_names", "not needed: the label column is `label_column`"),
    ("data_seed", "`seed` sets the data order too"),
    ("run_name", "name the output folder instead (`output`)"),
    ("disable_tqdm", "use `progress` (false to hide the bar)"),
    ("auto_find_batch_size", "choose `batch_size` and `grad_accum` yourself"),
    ("torch_compile", "not applicable"),
    ("local_rank", "distributed training is not supported yet"),
    ("ddp_backend", "distributed training is not supported yet"),
    ("deepspeed", "not supported"),
    ("fsdp", "not supported"),
];

/// Every `(key, hint)` pair.
pub fn all() -> impl Iterator<Item = (&'static str, &'static str)> {
    FOREIGN.iter().copied()
}

/// What to tell a user who wrote transformers' `key`, if it is one this trainer has no setting
/// for.
pub fn hint(key: &str) -> Option<&'static str> {
    FOREIGN.iter().find(|(k, _)| *k == key).map(|(_, h)| *h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_found_by_key_and_listed_once() {
        assert!(hint("tf32").is_some_and(|h| h.contains("f32")));
        assert!(hint("learning_rate").is_none());
        let mut keys: Vec<&str> = FOREIGN.iter().map(|(k, _)| *k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), FOREIGN.len(), "a key listed twice");
    }
}
