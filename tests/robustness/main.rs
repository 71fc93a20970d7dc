//! The robustness suite (issue #10): bad input, fuzz regressions and faults, end to end through
//! the `finetune` binary where a user would meet them.
//!
//! - [`checkpoints`]: damaged model folders (weights, shard indexes, `config.json`, tokenizer).
//! - [`data`]: damaged CSV / JSONL / Parquet / IDX / image data.
//! - [`cli`]: bad flag values, contradictory flags, occupied or unwritable output folders.
//! - [`faults`]: SIGKILL at random and at the worst points then `--resume`, a full disk while
//!   writing a checkpoint or an export, non-finite losses and gradients (`--on-nan`).
//! - [`locks`]: one writer per output folder, with real processes (a held, a SIGKILLed and a
//!   raced lock).
//! - [`fuzz_regressions`]: every file of `tests/robustness/corpus/<target>/` (crashers found by
//!   the `fuzz/` targets and seeds) and a seeded mutation run through the same entry points.
//!
//! Every bad-input case asserts the same contract ([`support::assert_clean_failure`]): a
//! non-zero exit, one `error:` line naming the file and what is wrong, no panic, and nothing
//! half written in the output folder.

#[path = "../common/mod.rs"]
mod common;

mod checkpoints;
mod cli;
mod data;
mod entry;
mod faults;
mod fuzz_regressions;
mod locks;
mod support;
