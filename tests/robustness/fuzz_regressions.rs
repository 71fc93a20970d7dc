//! The fuzzing regression suite, on the stable toolchain: every file of
//! `tests/robustness/corpus/<target>/` (seeds, and each crasher the `fuzz/` targets found, kept
//! after its fix) goes through the target's entry point ([`crate::entry`], the code the fuzz
//! targets run); then a seeded mutation run (bit flips, interesting bytes, truncations,
//! insertions, splices) of valid seed inputs does the same. No input may panic, and an error
//! must name the file it came from.

use crate::entry::{self, TARGETS};
use finetune_core::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// Targets whose errors name the file read (the image target decodes bytes: its caller names
/// the file).
const NAME_THE_FILE: &[&str] = &[
    "bert_config",
    "train_config",
    "safetensors_file",
    "shard_index",
    "csv",
    "jsonl",
    "idx",
    "cifar",
];

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/robustness/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus_dir(target).display()))
        .flatten()
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// Runs one input; a panic or an error not naming its file fails, with `what` and, for a
/// panic, the input saved to a temporary file to add to the corpus.
fn check(target: &str, f: fn(&[u8]) -> Result<(), String>, input: &[u8], what: &str) -> bool {
    match catch_unwind(AssertUnwindSafe(|| f(input))) {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            assert!(
                !(NAME_THE_FILE.contains(&target) && e.starts_with("(unnamed)")),
                "{target}: {what}: the error does not name the file: {e}"
            );
            false
        }
        Err(_) => {
            let keep = std::env::temp_dir().join(format!(
                "crash-{target}-{:016x}",
                input.iter().fold(0xcbf29ce484222325u64, |h, &b| {
                    (h ^ b as u64).wrapping_mul(0x100000001b3)
                })
            ));
            std::fs::write(&keep, input).unwrap();
            panic!(
                "{target}: {what} panicked; the input is saved as {} (copy it into {})",
                keep.display(),
                corpus_dir(target).display()
            );
        }
    }
}

#[test]
fn every_corpus_file_replays_without_a_panic() {
    let mut total = 0;
    for (target, f) in TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "no corpus for {target}");
        for (path, bytes) in files {
            check(target, *f, &bytes, &path.display().to_string());
            total += 1;
        }
    }
    assert!(total >= TARGETS.len());
}

#[test]
fn the_seed_inputs_are_valid() {
    // The mutation run starts from inputs that load: a mutation that fails is then a fault the
    // loader caught, not a seed that never worked.
    for (target, f) in TARGETS {
        for (i, s) in seeds(target).iter().enumerate() {
            assert!(f(s).is_ok(), "{target}: seed {i}: {:?}", f(s));
        }
    }
}

/// Valid inputs for each target.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "bert_config" => vec![
            serde_json::to_vec(&crate::common::tiny_config()).unwrap(),
            br#"{"hidden_size": 8, "num_attention_heads": 2, "id2label": {"0": "a", "1": "b"}}"#
                .to_vec(),
        ],
        "train_config" => vec![b"learning_rate = 0.001\nnum_train_epochs = 2\nlr_scheduler_type = \"cosine\"\nwarmup_ratio = 0.1\nbatch_size = 8\nfreeze = [\"bert.*\"]\nsave_steps = 10\non_nan = \"skip\"\n".to_vec()],
        "safetensors_file" => vec![safetensors_seed()],
        "shard_index" => vec![br#"{"metadata": {"total_size": 16}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors"}}"#.to_vec()],
        "csv" => vec![b"text,label\nhello world,pos\n\"quoted, text\nover lines\",neg\nbye,pos\n".to_vec()],
        "jsonl" => vec![b"{\"text\": \"hello\", \"label\": \"pos\"}\n\n{\"text\": \"bye\", \"label\": 1}\n{\"text\": \"x\", \"label\": true}\n".to_vec()],
        "idx" => vec![idx_seed()],
        "cifar" => vec![(0..2 * 3073).map(|i| if i % 3073 == 0 { (i / 3073) as u8 } else { (i % 251) as u8 }).collect()],
        "image" => vec![image_seed(image::ImageFormat::Png), image_seed(image::ImageFormat::Jpeg)],
        other => panic!("no seeds for {other}"),
    }
}

fn safetensors_seed() -> Vec<u8> {
    use candle_core::{DType, Device, Tensor};
    let dir = crate::common::tmpdir("robust-st-seed");
    let p = dir.join("m.safetensors");
    let t = |shape: &[usize], d: DType| {
        Tensor::arange(0f32, shape.iter().product::<usize>() as f32, &Device::Cpu)
            .unwrap()
            .reshape(shape)
            .unwrap()
            .to_dtype(d)
            .unwrap()
    };
    finetune_core::safetensors_io::save_tensors(
        &p,
        &[
            ("a.weight".into(), t(&[2, 3], DType::F32)),
            ("b.bias".into(), t(&[3], DType::F16)),
            ("c.ids".into(), t(&[4], DType::I64)),
        ],
    )
    .unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    bytes
}

fn idx_seed() -> Vec<u8> {
    let mut images = Vec::new();
    for w in [0x0803u32, 2, 3, 3] {
        images.extend(w.to_be_bytes());
    }
    images.extend((0..18u8).map(|i| i * 13));
    let mut labels = Vec::new();
    for w in [0x0801u32, 2] {
        labels.extend(w.to_be_bytes());
    }
    labels.extend([0u8, 1]);
    // The split: after the images file.
    let mut out = (images.len() as u16).to_be_bytes().to_vec();
    out.extend(images);
    out.extend(labels);
    out
}

fn image_seed(format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(12, 9, |x, y| {
        image::Rgb([(x * 20) as u8, (y * 28) as u8, 77])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    let mut bytes = vec![23u8];
    bytes.extend(out.into_inner());
    bytes
}

/// One seeded mutation of `input`: 1–4 edits of the kinds a fuzzer makes first.
fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, b'"', b',', b'\n'];
    for _ in 0..1 + rng.below(4) {
        let len = v.len() as u64;
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len) as usize;
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len) as usize;
                v[i] = INTERESTING[rng.below(8) as usize];
            }
            2 => v.truncate(rng.below(len + 1) as usize),
            3 => {
                let i = rng.below(len + 1) as usize;
                let n = 1 + rng.below(8) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                v.splice(i..i, bytes);
            }
            4 if len > 1 => {
                // Duplicate a chunk somewhere else.
                let a = rng.below(len) as usize;
                let b = (a + 1 + rng.below(32) as usize).min(v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() as u64 + 1) as usize;
                v.splice(at..at, chunk);
            }
            5 if len >= 8 => {
                // A little-endian or big-endian word set to an extreme.
                let i = rng.below(len - 7) as usize;
                let word = [0u64, u64::MAX, 1 << 40, u32::MAX as u64][rng.below(4) as usize];
                if rng.below(2) == 0 {
                    v[i..i + 8].copy_from_slice(&word.to_le_bytes());
                } else {
                    v[i..i + 4].copy_from_slice(&(word as u32).to_be_bytes());
                }
            }
            _ if len > 0 => {
                let i = rng.below(len) as usize;
                v.remove(i);
            }
            _ => v.push(rng.below(256) as u8),
        }
    }
    v
}

/// Mutations per target; the whole run stays within a few seconds.
const MUTATIONS: usize = 400;

#[test]
fn seeded_mutations_never_panic() {
    for (target, f) in TARGETS {
        let seeds = seeds(target);
        let mut rng = Rng::seed_from_u64(0xf022 ^ target.len() as u64);
        let (mut ok, mut err) = (0, 0);
        for i in 0..MUTATIONS {
            let seed = &seeds[i % seeds.len()];
            let input = mutate(seed, &mut rng);
            if check(target, *f, &input, &format!("mutation {i}")) {
                ok += 1;
            } else {
                err += 1;
            }
        }
        // The mutations reach both the accepting and the rejecting paths.
        assert!(
            err > 0,
            "{target}: no mutation was rejected ({ok} accepted)"
        );
        eprintln!("{target}: {ok} accepted, {err} rejected, no panic");
    }
}

#[test]
fn entry_points_report_the_file() {
    // The contract `check` relies on, for one obviously bad input per file-reading target.
    for target in NAME_THE_FILE {
        let f = TARGETS.iter().find(|(t, _)| t == target).unwrap().1;
        let e = f(b"\x00garbage\xff").expect_err(target);
        assert!(!e.starts_with("(unnamed)"), "{target}: {e}");
    }
    let _ = entry::image(b"");
}
