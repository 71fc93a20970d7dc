//! Reptile meta-learning on MNIST digits, measured honestly.
//!
//! `cargo run --release --example reptile-digits [-- --help]`
//!
//! Starts from a ResNet-18 pretrained on Fashion-MNIST (the one `resnet-finetune` caches under
//! `runs/resnet-finetune/fashion-pretrained`; pretrained here, smaller, when it is missing),
//! meta-trains it with Reptile on 5-way 5-shot tasks of the digits 0–4 of
//! `assets/mnist5k/mnist_5k.csv.gz`, and measures 5-way 5-shot accuracy on the held-out digits
//! 5–9 — the same episodes, the same adaptation — from the pretrained weights and from the
//! meta-trained ones. The meta-trained folder is a model `finetune train --model` takes.

use anyhow::{Context, Result};
use candle_finetune::core::OptimizerKind;
use candle_finetune::settings::{RunSettings, Task};
use candle_finetune::tasks::{self, meta};
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
    #[arg(long, default_value = "runs/reptile-digits")]
    output: PathBuf,
    /// The starting model (pretrained here on Fashion-MNIST when the folder is missing).
    #[arg(long, default_value = "runs/resnet-finetune/fashion-pretrained")]
    pretrained: PathBuf,
    /// Fashion-MNIST images to pretrain on when --pretrained is missing.
    #[arg(long, default_value_t = 10_000)]
    pretrain_samples: usize,
    #[arg(long, default_value_t = 100)]
    meta_steps: usize,
    #[arg(long, default_value_t = 5)]
    meta_batch: usize,
    #[arg(long, default_value_t = 5)]
    inner_steps: usize,
    /// Adaptation steps of the few-shot evaluation (both starting points).
    #[arg(long, default_value_t = 10)]
    eval_inner_steps: usize,
    #[arg(long, default_value_t = 1e-3)]
    inner_lr: f64,
    #[arg(long, default_value_t = 1.0)]
    meta_lr: f64,
    #[arg(long, default_value_t = 100)]
    eval_episodes: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    device: String,
}

fn main() -> Result<()> {
    candle_finetune::init();
    let args = Args::parse();
    let digits = args.assets.join("mnist5k/mnist_5k.csv.gz");
    let fashion = args.assets.join("fashion-mnist");
    for p in [&digits, &fashion] {
        p.exists()
            .then_some(())
            .with_context(|| format!("{} is missing: run scripts/fetch-assets.sh", p.display()))?;
    }
    if !args.pretrained.join("model.safetensors").is_file() {
        pretrain(&args, &fashion)?;
    }
    let mut s = meta::MetaSettings::default();
    let j = &mut s.job;
    j.model = Some(args.pretrained.display().to_string());
    j.train = vec![digits];
    j.output = Some(args.output.clone());
    j.overwrite = true;
    j.device = args.device.clone();
    j.classes = Some(["0", "1", "2", "3", "4"].map(String::from).to_vec());
    j.eval_classes = Some(["5", "6", "7", "8", "9"].map(String::from).to_vec());
    (j.eval_episodes, j.eval_inner_steps) = (args.eval_episodes, Some(args.eval_inner_steps));
    let r = &mut s.reptile;
    (r.ways, r.shots, r.query_shots) = (5, 5, 15);
    (r.inner_steps, r.inner_lr, r.inner_optimizer) =
        (args.inner_steps, args.inner_lr, OptimizerKind::Adam);
    (r.meta_steps, r.meta_batch, r.meta_lr) = (args.meta_steps, args.meta_batch, args.meta_lr);
    r.seed = args.seed;
    println!(
        "Reptile on digits 0-4 ({} meta steps x {} tasks), few-shot accuracy on digits 5-9",
        r.meta_steps, r.meta_batch
    );
    let report = meta::meta_train(&s, &mut |line| println!("  {line}"))?;
    println!(
        "\n| 5-way 5-shot on digits 5-9, {} episodes | accuracy (95% interval) |",
        args.eval_episodes
    );
    println!("|{:-<41}|{:-<26}|", "", "");
    for (name, acc) in [
        ("pretrained weights (Fashion-MNIST)", &report.before),
        ("after Reptile on digits 0-4", &report.after),
    ] {
        if let Some(a) = acc {
            let cell = format!("{:.2}% ± {:.2}%", 100.0 * a.mean, 100.0 * a.ci95);
            println!("| {name:<39} | {cell:>24} |");
        }
    }
    println!(
        "\ntotal time {:.0} s; meta-trained model in {}",
        report.runtime_s,
        report.output.display()
    );
    Ok(())
}

/// A ResNet-18 trained from scratch on Fashion-MNIST (28×28 gray), as `resnet-finetune` does.
fn pretrain(args: &Args, fashion: &std::path::Path) -> Result<()> {
    println!(
        "pretraining a ResNet-18 on {} Fashion-MNIST images into {}",
        args.pretrain_samples,
        args.pretrained.display()
    );
    let mut job = RunSettings::new(Task::ImageClassification, "resnet18", &args.pretrained);
    job.job.overwrite = true;
    job.job.device = args.device.clone();
    (job.data.train, job.data.test) = (vec![fashion.to_path_buf()], vec![fashion.to_path_buf()]);
    (job.image.image_size, job.image.channels) = (Some(28), Some(1));
    job.data.max_train_samples = Some(args.pretrain_samples);
    job.image.max_eval_samples = Some(1000);
    job.image.augment = "none".parse()?;
    let c = &mut job.train;
    (c.epochs, c.lr, c.batch_size, c.save_total_limit) = (1, 2e-3, 32, Some(1));
    tasks::train(&job)?;
    Ok(())
}
