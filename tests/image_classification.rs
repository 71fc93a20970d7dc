//! Image classification end to end, on a tiny ResNet (widths 4-8, one block per stage) and a
//! tiny ImageFolder of 16×16 PNGs that the tests write: train → export → predict schema through
//! the CLI, eval metrics equal to the run's final evaluation, bit-identical logits after export,
//! exact resume with augmentation on, and augmentation leaving evaluation untouched.

use candle_core::{DType, Device, Tensor};
use candle_finetune::resnet::{ResNet, ResNetConfig};
use candle_finetune::settings::{RunSettings, Task};
use candle_finetune::tasks::augment::Augment;
use candle_finetune::tasks::image::{ImageClassifier, ImageModelOptions};
use candle_finetune::tasks::{self, export};
use candle_finetune::train::{BatchSource, Learner, TrainConfig};
use finetune_data::image::{open, ImageOpenOptions};
use finetune_data::{OnBadSample, SkipLog};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const CLASSES: [&str; 3] = ["across", "down", "spot"];

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-image-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `per_class` PNGs per class under `root/<class>/`: a bright horizontal bar, a vertical bar or
/// a centre spot at a jittered place, in a class-independent random colour, over noise.
fn write_image_folder(root: &Path, per_class: usize, seed: u64) {
    let mut rng = candle_finetune::core::Rng::seed_from_u64(seed);
    for (c, name) in CLASSES.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let at = 4 + rng.below(8) as u32;
            let colour = [
                128 + rng.below(128) as u8,
                128 + rng.below(128) as u8,
                128 + rng.below(128) as u8,
            ];
            let noise: Vec<u8> = (0..16 * 16 * 3).map(|_| rng.below(60) as u8).collect();
            let img = image::RgbImage::from_fn(16, 16, |x, y| {
                let on = match c {
                    0 => y.abs_diff(at) <= 1,
                    1 => x.abs_diff(at) <= 1,
                    _ => x.abs_diff(8) <= 2 && y.abs_diff(8) <= 2,
                };
                let k = ((y * 16 + x) * 3) as usize;
                image::Rgb(std::array::from_fn(|ch| {
                    if on {
                        colour[ch]
                    } else {
                        noise[k + ch]
                    }
                }))
            });
            img.save(dir.join(format!("{i:02}.png"))).unwrap();
        }
    }
}

/// A tiny randomly initialised ResNet-18-layout checkpoint (16×16 RGB input) in `dir`.
fn write_tiny_resnet(dir: &Path, num_classes: usize) {
    let v = serde_json::json!({
        "architecture": "resnet18", "num_classes": num_classes,
        "model_args": {"layers": [1, 1, 1, 1], "channels": [4, 8, 8, 8]}, "stem_channels": 4,
        "pretrained_cfg": {"input_size": [3, 16, 16], "crop_pct": 1.0, "interpolation": "bilinear"}
    });
    let cfg = ResNetConfig::from_timm_json(v.as_object().unwrap()).unwrap();
    let model = ResNet::init(cfg, DType::F32, &Device::Cpu, 7).unwrap();
    model.export_as(dir, None).unwrap();
}

struct Fixture {
    root: PathBuf,
    model: PathBuf,
    train: PathBuf,
    eval: PathBuf,
}

/// A passing test removes its fixture (a failing one keeps it, to look at).
impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn fixture(tag: &str) -> Fixture {
    let root = tmpdir(tag);
    let (model, train, eval) = (root.join("tiny"), root.join("train"), root.join("eval"));
    write_tiny_resnet(&model, 5);
    write_image_folder(&train, 8, 1);
    write_image_folder(&eval, 4, 2);
    Fixture {
        root,
        model,
        train,
        eval,
    }
}

fn quiet_config(epochs: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 6,
        eval_batch_size: 5,
        lr: 1e-2,
        progress: false,
        ..TrainConfig::default()
    }
}

fn finetune(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_finetune"))
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "finetune {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn cli_train_export_predict_and_eval() {
    let f = fixture("cli");
    let out = f.root.join("out");
    let (report, _) = finetune(&[
        "train",
        "--task",
        "image-classification",
        "--model",
        s(&f.model),
        "--train",
        s(&f.train),
        "--eval",
        s(&f.eval),
        "--output",
        s(&out),
        "--epochs",
        "2",
        "--batch-size",
        "6",
        "--lr",
        "0.01",
        "--augment",
        "light,hflip=0",
        "--no-progress",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["labels"], serde_json::json!(CLASSES));
    assert_eq!(report["summary"]["global_step"], 8);
    let run: Value =
        serde_json::from_slice(&std::fs::read(out.join("run_config.json")).unwrap()).unwrap();
    assert_eq!(run["task"], "image-classification");
    assert_eq!(
        run["augment"],
        "scale=0.5:1,ratio=0.75:1.3333333333333333,hflip=0,rotation=0,jitter=0,hue=0"
    );
    // The 5-class checkpoint got a new 3-class head, named.
    let config: Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["num_classes"], 3);
    assert_eq!(config["label_names"], serde_json::json!(CLASSES));

    // `eval` on the eval folder gives the run's final evaluation.
    let (metrics, _) = finetune(&["eval", "--model", s(&out), "--data", s(&f.eval), "--json"]);
    let metrics: Value = serde_json::from_str(&metrics).unwrap();
    let last = &report["summary"]["final_eval"];
    assert_eq!(metrics["samples"], 12);
    assert_eq!(metrics["classification"], last["classification"]);
    let (a, b) = (
        metrics["loss"].as_f64().unwrap(),
        last["loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");

    // Export, then predict with the exported folder.
    let exported = f.root.join("exported");
    finetune(&[
        "export",
        "--checkpoint",
        s(&out),
        "--output",
        s(&exported),
        "--dtype",
        "f16",
    ]);
    assert!(exported.join("model.safetensors").is_file());
    let images = [
        f.eval.join("across/00.png"),
        f.eval.join("spot/01.png"),
        f.eval.join("down/03.png"),
    ];
    let mut args = vec!["predict", "--model", s(&exported), "--top-k", "2", "--json"];
    args.push("--image");
    args.extend(images.iter().map(|p| s(p)));
    let (lines, _) = finetune(&args);
    let lines: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), images.len());
    for p in &lines {
        let obj = p.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["label", "logits", "score", "scores"]);
        assert!(CLASSES.contains(&p["label"].as_str().unwrap()));
        let scores = p["scores"].as_object().unwrap();
        assert_eq!(scores.len(), 2);
        let score = p["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score));
        assert_eq!(scores[p["label"].as_str().unwrap()].as_f64(), Some(score));
        assert!(scores.values().all(|v| v.as_f64().unwrap() <= score));
        assert_eq!(p["logits"].as_array().unwrap().len(), 3);
    }
}

/// The classifier for the fixture's three classes, and batch sources over its folders.
fn classifier(f: &Fixture) -> ImageClassifier {
    let opts = ImageModelOptions {
        labels: Some(CLASSES.iter().map(|c| c.to_string()).collect()),
        ..Default::default()
    };
    ImageClassifier::load(s(&f.model), &opts, &Device::Cpu).unwrap()
}

fn dataset(path: &Path) -> finetune_data::image::ImageDataset {
    open(path, &ImageOpenOptions::default()).unwrap()
}

fn all_logits(clf: &ImageClassifier, src: &dyn BatchSource<Tensor>) -> Vec<Vec<f32>> {
    let idx: Vec<usize> = (0..src.len()).collect();
    let batch = src.batch(&idx, 0, false).unwrap();
    clf.model()
        .forward_t(&batch.inputs, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap()
}

#[test]
fn exported_model_reloads_with_identical_logits() {
    let f = fixture("reload");
    let clf = classifier(&f);
    let (train, eval) = (dataset(&f.train), dataset(&f.eval));
    let aug: Augment = "strong".parse().unwrap();
    let skipped = SkipLog::new();
    let src = |d| {
        clf.batches(d, &aug, 3, OnBadSample::Error, &skipped)
            .unwrap()
    };
    let out = f.root.join("out");
    let learner = Learner::new(clf.model(), quiet_config(2), &out).unwrap();
    learner.fit(&src(&train), None, None).unwrap();
    let before = all_logits(&clf, &src(&eval));

    let exported = f.root.join("exported");
    export(&out, &exported, Some(DType::F32)).unwrap();
    let back =
        ImageClassifier::load(s(&exported), &ImageModelOptions::default(), &Device::Cpu).unwrap();
    assert_eq!(back.labels(), CLASSES);
    let after = all_logits(
        &back,
        &back
            .batches(&eval, &aug, 3, OnBadSample::Error, &skipped)
            .unwrap(),
    );
    assert_eq!(before, after);
    // Training moved the BatchNorm statistics, and they were exported with the weights.
    let nbt = back
        .model()
        .store()
        .get("bn1.num_batches_tracked")
        .unwrap()
        .to_scalar::<i64>()
        .unwrap();
    assert_eq!(nbt, 8);
    // A half-precision export stays close, but is a different model.
    let half = f.root.join("half");
    export(&out, &half, Some(DType::F16)).unwrap();
    let h = ImageClassifier::load(s(&half), &ImageModelOptions::default(), &Device::Cpu).unwrap();
    let approx = all_logits(
        &h,
        &h.batches(&eval, &aug, 3, OnBadSample::Error, &skipped)
            .unwrap(),
    );
    for (a, b) in approx.iter().flatten().zip(before.iter().flatten()) {
        assert!((a - b).abs() < 0.05, "{a} vs {b}");
    }
}

#[test]
fn augmentation_changes_training_batches_only() {
    let f = fixture("augment");
    let clf = classifier(&f);
    let data = dataset(&f.train);
    let skipped = SkipLog::new();
    let make = |a: &str| {
        clf.batches(&data, &a.parse().unwrap(), 11, OnBadSample::Error, &skipped)
            .unwrap()
    };
    let (none, strong) = (make("none"), make("strong"));
    let idx = [0, 5, 9, 17, 23];
    let pixels = |src: &dyn BatchSource<Tensor>, epoch, train| {
        src.batch(&idx, epoch, train)
            .unwrap()
            .inputs
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    // Evaluation ignores the augmentation entirely...
    assert_eq!(pixels(&none, 0, false), pixels(&strong, 0, false));
    assert_eq!(pixels(&none, 3, false), pixels(&strong, 0, false));
    // ...which is the eval pipeline itself when it is `none`...
    assert_eq!(pixels(&none, 2, true), pixels(&none, 0, false));
    // ...while a random one changes training batches, the same way for the same (epoch, index)
    // and differently in another epoch.
    let e1 = pixels(&strong, 1, true);
    assert_ne!(e1, pixels(&none, 1, true));
    assert_eq!(e1, pixels(&strong, 1, true));
    assert_ne!(e1, pixels(&strong, 2, true));
    // Same metrics from an eval run whatever the augmentation.
    let m = |src| {
        candle_finetune::train::learner::evaluate(clf.model(), src, 4)
            .unwrap()
            .loss
    };
    assert_eq!(m(&none), m(&strong));
}

#[test]
fn training_batches_do_not_depend_on_the_thread_count() {
    let f = fixture("threads");
    let clf = classifier(&f);
    let data = dataset(&f.train);
    let skipped = SkipLog::new();
    let strong = "strong".parse().unwrap();
    let src = clf
        .batches(&data, &strong, 5, OnBadSample::Error, &skipped)
        .unwrap();
    let idx: Vec<usize> = (0..data.len()).rev().collect();
    let pixels = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let b = src.batch(&idx, 2, true).unwrap();
            let labels = b.targets.to_vec1::<u32>().unwrap();
            (
                b.inputs.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                labels,
            )
        })
    };
    let one = pixels(1);
    assert_eq!(one, pixels(3));
    // Labels travel with their images, in the order asked for.
    let want: Vec<u32> = idx.iter().map(|&i| data.labels()[i] as u32).collect();
    assert_eq!(one.1, want);
}

#[test]
fn resumed_run_with_augmentation_matches_uninterrupted_run() {
    let f = fixture("resume");
    let job = |out: &Path, resume: Option<String>| {
        let mut job = RunSettings::new(Task::ImageClassification, s(&f.model), out);
        job.data.train = vec![f.train.clone()];
        job.image.augment = "strong".parse().unwrap();
        job.job.dropout = Some(0.2);
        job.job.device = "cpu".into();
        job.job.resume = resume;
        job.train = TrainConfig {
            save_steps: Some(3),
            ..quiet_config(2)
        };
        job
    };
    let full = f.root.join("full");
    let report = tasks::train(&job(&full, None)).unwrap();
    assert_eq!(report.summary.global_step, 8);
    // A second output folder that starts from the first run's step-3 checkpoint.
    let resumed = f.root.join("resumed");
    let ckpt = full.join("checkpoint-3");
    tasks::train(&job(&resumed, Some(s(&ckpt).to_string()))).unwrap();
    let read = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(read(&full), read(&resumed));
}

#[test]
fn fresh_architecture_trains_from_scratch_on_gray_images() {
    let f = fixture("scratch");
    let mut job = RunSettings::new(Task::ImageClassification, "resnet18", f.root.join("out"));
    job.data.train = vec![f.train.clone()];
    job.data.eval = vec![f.eval.clone()];
    job.image.image_size = Some(16);
    job.image.channels = Some(1);
    job.image.augment = "none".parse().unwrap();
    job.train = TrainConfig {
        max_steps: Some(1),
        ..quiet_config(1)
    };
    let report = tasks::train(&job).unwrap();
    assert_eq!(report.labels, CLASSES);
    assert!(report.frozen.is_empty());
    assert_eq!(report.summary.trainable_params, report.summary.total_params);
    let config: Value =
        serde_json::from_slice(&std::fs::read(f.root.join("out/config.json")).unwrap()).unwrap();
    assert_eq!(config["architecture"], "resnet18");
    assert_eq!(config["model_args"]["in_chans"], 1);
    assert_eq!(
        config["pretrained_cfg"]["input_size"],
        serde_json::json!([1, 16, 16])
    );
    assert!(report.summary.final_eval.is_some());
}
