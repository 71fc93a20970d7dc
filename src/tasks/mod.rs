//! Tasks: the wiring of a model crate, the data crate, the hub and the learner into one job,
//! shared by the `finetune` CLI and the examples (which only parse arguments and print).

pub mod text;
