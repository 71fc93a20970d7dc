//! Transfer learning with a ResNet-18.
//!
//! `cargo run --release --example resnet-finetune [-- --help]`
//!
//! With the Hub: fine-tunes `timm/resnet18.a1_in1k` (ImageNet weights) on the Hub's
//! `uoft-cs/cifar10`, at a CPU-friendly input size. `--model` takes any image checkpoint:
//! `--model google/vit-base-patch16-224 --image-size 96` fine-tunes a ViT the same way (its
//! position embeddings resampled to the 6×6 patch grid of 96×96 inputs).
//!
//! Offline (the Hub out of reach, or `--offline`): pretrains a ResNet-18 on Fashion-MNIST once
//! (cached under `--output`), then fine-tunes it on the 5,000 MNIST digits of
//! `scripts/fetch-assets.sh` three ways and prints one table: the frozen backbone with a new
//! head, the whole network with a 10× smaller backbone learning rate, and the same network
//! trained from scratch. Everything runs at the images' native 28×28: about ten minutes of
//! CPU for the pretraining (once), a minute for the three fine-tunes.

use anyhow::{Context, Result};
use candle_finetune::core::{OptimizerKind, ScheduleKind};
use candle_finetune::hub::{resolve_dataset, resolve_model, DatasetOptions, HubConfig};
use candle_finetune::settings::{RunSettings, Task};
use candle_finetune::tasks::{self, RunReport};
use candle_finetune::train::Metric;
use clap::Parser;
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Args {
    /// An image checkpoint on the Hub (ResNet or ViT; timm or transformers).
    #[arg(long, default_value = "timm/resnet18.a1_in1k")]
    model: String,
    /// A Hub image dataset with parquet splits.
    #[arg(long, default_value = "uoft-cs/cifar10")]
    dataset: String,
    #[arg(long, default_value = "img")]
    image_column: String,
    /// Input size for the Hub demo (the checkpoint's 224 is slow on a CPU).
    #[arg(long, default_value_t = 64)]
    image_size: usize,
    /// Run the offline demonstration even when the Hub is reachable.
    #[arg(long)]
    offline: bool,
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
    #[arg(long, default_value = "runs/resnet-finetune")]
    output: PathBuf,
    /// Fashion-MNIST images to pretrain on (a seeded sample of the 60,000).
    #[arg(long, default_value_t = 20_000)]
    pretrain_samples: usize,
    #[arg(long, default_value_t = 2)]
    pretrain_epochs: u64,
    /// MNIST digits to fine-tune on (a sample of the 4,500 left after holding out 500).
    #[arg(long, default_value_t = 300)]
    train_samples: usize,
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    /// Learning rate of the new head; the backbone's is 10× smaller in the full fine-tune.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Learning rate of the from-scratch run (1e-2 trains it worse).
    #[arg(long, default_value_t = 3e-3)]
    scratch_lr: f64,
    #[arg(long, default_value = "auto")]
    device: String,
}

const FASHION: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

fn main() -> Result<()> {
    // Process tuning (allocator, candle's worker pool): before any thread starts.
    candle_finetune::init();
    let args = Args::parse();
    if !args.offline {
        let hub = HubConfig::from_env();
        let reachable = resolve_model(&args.model, &hub, &Default::default())
            .and_then(|_| resolve_dataset(&args.dataset, &hub, &DatasetOptions::default()));
        match reachable {
            Ok(_) => return hub_demo(&args),
            Err(e) => eprintln!("The Hub is out of reach ({e}); running the offline demo"),
        }
    }
    offline_demo(&args)
}

fn job(args: &Args, model: &str, output: &Path) -> RunSettings {
    let mut job = RunSettings::new(Task::ImageClassification, model, output);
    // A demo: a second run replaces the first one's outputs.
    job.job.overwrite = true;
    job.job.device = args.device.clone();
    let c = &mut job.train;
    (c.optimizer, c.schedule, c.warmup_ratio) =
        (OptimizerKind::AdamW, ScheduleKind::Cosine, Some(0.1));
    (c.batch_size, c.eval_batch_size, c.metric) = (32, 200, Metric::Accuracy);
    (c.weight_decay, c.logging_steps, c.save_total_limit) = (0.01, 20, Some(1));
    job
}

fn accuracy(r: &RunReport) -> f64 {
    let m = r.test.as_ref().or(r.summary.final_eval.as_ref());
    m.and_then(|m| m.classification.as_ref())
        .map_or(f64::NAN, |c| 100.0 * c.accuracy)
}

fn hub_demo(args: &Args) -> Result<()> {
    let mut job = job(args, &args.model, &args.output.join("hub"));
    job.data.dataset = Some(args.dataset.clone());
    job.image.image_column = args.image_column.clone();
    job.image.image_size = Some(args.image_size);
    (job.data.max_train_samples, job.image.max_eval_samples) = (Some(3000), Some(1000));
    job.image.augment = "light".parse()?;
    (job.train.epochs, job.train.lr, job.train.head_lr) = (1, args.lr / 10.0, Some(args.lr));
    println!(
        "fine-tuning {} on 3,000 images of {} at {px}x{px}, 1 epoch",
        args.model,
        args.dataset,
        px = args.image_size
    );
    let r = tasks::train(&job)?;
    println!("accuracy on 1,000 held-out images: {:.2}%", accuracy(&r));
    println!("exported model: {}", r.output.display());
    Ok(())
}

fn offline_demo(args: &Args) -> Result<()> {
    let fashion = args.assets.join("fashion-mnist");
    let digits = args.assets.join("mnist5k/mnist_5k.csv.gz");
    for p in [&fashion, &digits] {
        p.exists()
            .then_some(())
            .with_context(|| format!("{} is missing: run scripts/fetch-assets.sh", p.display()))?;
    }
    let started = std::time::Instant::now();
    let pretrained = args.output.join("fashion-pretrained");
    if pretrained.join("model.safetensors").is_file() {
        println!(
            "using the Fashion-MNIST ResNet-18 cached in {}",
            pretrained.display()
        );
    } else {
        println!(
            "pretraining a ResNet-18 from scratch on {} Fashion-MNIST images (28x28 gray), {} \
             epochs; cached in {}",
            args.pretrain_samples,
            args.pretrain_epochs,
            pretrained.display()
        );
        let mut job = job(args, "resnet18", &pretrained);
        (job.data.train, job.data.test) = (vec![fashion.clone()], vec![fashion.clone()]);
        job.data.labels = Some(FASHION.map(String::from).to_vec());
        (job.image.image_size, job.image.channels) = (Some(28), Some(1));
        job.data.max_train_samples = Some(args.pretrain_samples);
        job.image.max_eval_samples = Some(1000);
        job.image.augment = "none".parse()?;
        (job.train.epochs, job.train.lr) = (args.pretrain_epochs, 2e-3);
        let r = tasks::train(&job)?;
        println!(
            "Fashion-MNIST test accuracy (1,000 images): {:.2}%",
            accuracy(&r)
        );
    }

    let pre = pretrained.display().to_string();
    // (setup, model, backbone lr, head lr); a `None` backbone lr means a frozen backbone.
    let setups = [
        ("frozen backbone + new head", pre.as_str(), None, args.lr),
        (
            "full fine-tune, backbone lr = head lr / 10",
            &pre,
            Some(args.lr / 10.0),
            args.lr,
        ),
        (
            "same network from scratch",
            "resnet18",
            Some(args.scratch_lr),
            args.scratch_lr,
        ),
    ];
    println!(
        "fine-tuning on {} MNIST digits (28x28 gray), {} epochs, batch 32, AdamW with cosine \
         decay; accuracy on 500 held-out digits",
        args.train_samples, args.epochs
    );
    let mut rows = Vec::new();
    for (i, (name, model, backbone_lr, head_lr)) in setups.into_iter().enumerate() {
        let mut job = job(args, model, &args.output.join(format!("mnist-{}", i + 1)));
        job.data.train = vec![digits.clone()];
        job.data.validation_split = Some(0.1);
        job.data.max_train_samples = Some(args.train_samples);
        (job.image.image_size, job.image.channels) = (Some(28), Some(1));
        job.image.augment = "scale=0.85:1,hflip=0,rotation=10".parse()?;
        let c = &mut job.train;
        c.epochs = args.epochs;
        (c.lr, c.head_lr) = (backbone_lr.unwrap_or(head_lr), Some(head_lr));
        if backbone_lr.is_none() {
            (c.freeze, c.unfreeze, c.freeze_bn) = (vec!["*".into()], vec!["fc.*".into()], true);
        }
        println!("- {name} ...");
        let r = tasks::train(&job)?;
        let lrs = match backbone_lr {
            Some(b) => format!("{b:.0e} / {head_lr:.0e}"),
            None => format!("frozen / {head_lr:.0e}"),
        };
        rows.push((name, lrs, r));
    }
    println!(
        "\n| {:<42} | {:>15} | {:>16} | {:>8} | {:>9} | {:>9} |",
        "MNIST digits", "lr body / head", "trainable params", "time (s)", "eval loss", "accuracy"
    );
    println!(
        "|{:-<44}|{:->17}|{:->18}|{:->10}|{:->11}|{:->11}|",
        "", "", "", "", "", ""
    );
    for (name, lrs, r) in &rows {
        let s = &r.summary;
        println!(
            "| {:<42} | {:>15} | {:>16} | {:>8.0} | {:>9.4} | {:>8.2}% |",
            name,
            lrs,
            s.trainable_params,
            s.runtime_s,
            s.final_eval.as_ref().map_or(f64::NAN, |m| m.loss),
            accuracy(r)
        );
    }
    println!(
        "\ntotal time: {:.0} s; models in {}",
        started.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(())
}
