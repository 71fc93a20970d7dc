//! Fine-tunes a text checkpoint (MiniLM by default) for named entity recognition and prints
//! seqeval's entity F1 on held-out sentences, then the entities of a few new sentences.
//!
//! `cargo run --release --example ner [-- --help]`
//!
//! Data: no public NER corpus could be had offline, so this example writes synthetic CoNLL
//! files: template sentences (`PER lives in LOC .`, `PER works at ORG in LOC .`, …) whose
//! names, places and companies in the evaluation file never occur in the training file — the
//! model has to tag entities it has not seen, from their context and their word pieces.

use anyhow::Result;
use candle_finetune::settings::{RunSettings, Task};
use candle_finetune::tasks::{self, text::TextModelOptions, token::TokenTagger};
use candle_finetune::train::Metric;
use clap::Parser;
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Args {
    /// A text checkpoint of any supported family: Hub id or folder.
    #[arg(long, default_value = "assets/minilm")]
    model: String,
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    #[arg(long, default_value = "runs/ner")]
    output: PathBuf,
    #[arg(long, default_value = "auto")]
    device: String,
}

const TEMPLATES: [&str; 7] = [
    "P lives in L .",
    "P works at O in L .",
    "O opened an office in L .",
    "P met P in L yesterday .",
    "yesterday P visited L and L .",
    "the weather in L was cold .",
    "P left O last year .",
];

/// Names, places and companies: one list for training, another for evaluation.
struct Entities {
    per: &'static [&'static str],
    loc: &'static [&'static str],
    org: &'static [&'static str],
}

const TRAIN: Entities = Entities {
    per: &[
        "John Smith",
        "Mary",
        "Peter Brown",
        "Anna",
        "Lucas Meyer",
        "Sofia Rossi",
        "David",
    ],
    loc: &[
        "Paris", "New York", "Berlin", "Madrid", "Tokyo", "Cairo", "Lima", "Oslo",
    ],
    org: &[
        "Acme Corp",
        "Google",
        "United Nations",
        "Siemens",
        "Red Cross",
    ],
};

const EVAL: Entities = Entities {
    per: &[
        "Hannah Schmidt",
        "Carlos",
        "Yuki Tanaka",
        "Ivan Petrov",
        "Grace",
    ],
    loc: &["Vienna", "Buenos Aires", "Dublin", "Seoul", "Nairobi"],
    org: &["Microsoft", "World Bank", "Toyota"],
};

/// `n` sentences in CoNLL form (`word tag` lines, IOB2), drawn by a fixed sequence.
fn write_conll(path: &Path, n: usize, e: &Entities) -> Result<()> {
    let mut text = String::new();
    let mut draw = 7usize;
    let mut next = |len: usize| {
        draw = (draw * 1_103_515_245 + 12_345) % 2_147_483_648;
        (draw >> 8) % len
    };
    for _ in 0..n {
        for slot in TEMPLATES[next(TEMPLATES.len())].split(' ') {
            let (names, ty) = match slot {
                "P" => (e.per, "PER"),
                "L" => (e.loc, "LOC"),
                "O" => (e.org, "ORG"),
                word => {
                    text += &format!("{word} O\n");
                    continue;
                }
            };
            for (k, w) in names[next(names.len())].split(' ').enumerate() {
                text += &format!("{w} {}-{ty}\n", if k == 0 { "B" } else { "I" });
            }
        }
        text += "\n";
    }
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    Ok(std::fs::write(path, text)?)
}

fn main() -> Result<()> {
    candle_finetune::init();
    let args = Args::parse();
    let data = args.output.with_extension("data");
    let (train, eval) = (data.join("train.conll"), data.join("eval.conll"));
    write_conll(&train, 300, &TRAIN)?;
    write_conll(&eval, 100, &EVAL)?;

    let mut job = RunSettings::new(Task::TokenClassification, &args.model, &args.output);
    job.job.overwrite = true;
    job.job.device = args.device.clone();
    (job.data.train, job.data.eval) = (vec![train], vec![eval]);
    job.text.max_length = Some(32);
    let c = &mut job.train;
    (c.epochs, c.lr, c.batch_size, c.metric) = (args.epochs, args.lr, 16, Metric::F1);
    let report = tasks::train(&job)?;
    if let Some(e) = report
        .summary
        .final_eval
        .as_ref()
        .and_then(|m| m.entities.as_ref())
    {
        println!(
            "held-out entities: F1 {:.3} (precision {:.3}, recall {:.3}), token accuracy {:.3}",
            e.f1, e.precision, e.recall, e.accuracy
        );
    }
    let opts = TextModelOptions::default();
    let source = tasks::open(&report.output.display().to_string())?;
    let device = candle_finetune::core::select_device(&args.device)?;
    let tagger = TokenTagger::from_source(&source, &opts, &device)?;
    let texts = [
        "Angela Merkel met Emmanuel Macron in Lisbon .",
        "Grace works at Nokia .",
    ];
    for (text, p) in texts.iter().zip(tagger.predict(&texts)?) {
        let found: Vec<String> = p
            .entities
            .iter()
            .map(|e| format!("{}:{}", e.label, e.text))
            .collect();
        println!("{text}  →  {}", found.join(", "));
    }
    Ok(())
}
