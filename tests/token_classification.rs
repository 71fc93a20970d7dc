//! Token classification against transformers: the tiny `BertForTokenClassification`,
//! `DistilBertForTokenClassification` and `RobertaForTokenClassification` of
//! `scripts/make-token-fixtures.py` (random weights, hidden 36 with 3 heads; a WordPiece
//! vocabulary that splits words into pieces and lacks `é`, and for RoBERTa the byte-level BPE
//! of the RoBERTa family fixture with padding id 1) with the logits, word-piece alignment and
//! `ner` pipeline entities transformers computed.

use candle_core::{DType, Device, Tensor};
use candle_finetune::bert::{Architecture, BertBatch, BertTokenizer, LoadOptions, TokenClassifier};
use candle_finetune::tasks::text::TextModelOptions;
use candle_finetune::tasks::token::align::{align, inside_classes};
use candle_finetune::tasks::token::TokenTagger;
use candle_finetune::tasks::{self};
use finetune_bert::Bert;
use finetune_distilbert::DistilBert;
use finetune_roberta::Roberta;
use serde_json::Value;
use std::path::{Path, PathBuf};

type R = Result<(), Box<dyn std::error::Error>>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ner")
        .join(name)
}

fn record(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("logits.json")).unwrap())
        .unwrap()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn max_diff(got: &[Vec<f64>], want: &[Vec<f64>]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .flatten()
        .zip(want.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

fn tagger(name: &str, max_length: Option<usize>) -> TokenTagger {
    let source = tasks::open(fixture(name).to_str().unwrap()).unwrap();
    let opts = TextModelOptions {
        max_length,
        ..Default::default()
    };
    TokenTagger::from_source(&source, &opts, &Device::Cpu).unwrap()
}

/// Eval-mode logits of fixed padded ids equal transformers' (≤ 1e-4).
fn logits_match<A: Architecture>(name: &str) -> R {
    let rec = record(name);
    let (model, report) =
        TokenClassifier::<A>::from_pretrained(&fixture(name), &LoadOptions::default())?;
    assert!(report.newly_initialized.is_empty() && report.resized.is_empty());
    let ids: Vec<Vec<u32>> = serde_json::from_value(rec["input_ids"].clone())?;
    let mask: Vec<Vec<u32>> = serde_json::from_value(rec["attention_mask"].clone())?;
    let b = BertBatch {
        input_ids: Tensor::new(ids, &Device::Cpu)?,
        token_type_ids: None,
        attention_mask: Some(Tensor::new(mask, &Device::Cpu)?),
    };
    let logits = model.forward_t(&b, false)?;
    let (n, t, l) = logits.dims3()?;
    assert_eq!((n, t, l), (2, 7, 7));
    let got: Vec<Vec<f64>> = logits
        .to_dtype(DType::F64)?
        .reshape((n * t, l))?
        .to_vec2()?;
    let want: Vec<Vec<Vec<f64>>> = serde_json::from_value(rec["logits"].clone())?;
    let want: Vec<Vec<f64>> = want.into_iter().flatten().collect();
    let d = max_diff(&got, &want);
    assert!(d <= 1e-4, "{name}: logits differ from transformers' by {d}");
    Ok(())
}

#[test]
fn bert_token_logits_match_transformers() -> R {
    logits_match::<Bert>("bert-token")
}

#[test]
fn distilbert_token_logits_match_transformers() -> R {
    logits_match::<DistilBert>("distilbert-token")
}

/// RoBERTa's positions count from `pad_token_id + 1` past padding (id 1 here, the second row
/// padded): a BERT-style 0-based position would give other logits.
#[test]
fn roberta_token_logits_match_transformers() -> R {
    logits_match::<Roberta>("roberta-token")
}

/// `predict`: the tokens and one row of logits per token (special tokens included) are
/// transformers' `model(**tokenizer(text)).logits[0]`; the entities are the `ner` pipeline's
/// with `aggregation_strategy="first"` (type, character span, score).
fn predictions_match(name: &str) -> R {
    let rec = record(name);
    let tagger = tagger(name, None);
    let texts: Vec<&str> = rec["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    let preds = tagger.predict(&texts)?;
    let mut grouped = 0;
    for (i, p) in preds.iter().enumerate() {
        let want = &rec["texts"][i];
        let tokens: Vec<String> = serde_json::from_value(want["tokens"].clone())?;
        assert_eq!(p.tokens, tokens, "{name}: tokens of text {i}");
        let got: Vec<Vec<f64>> = p
            .logits
            .iter()
            .map(|r| r.iter().map(|&x| x as f64).collect())
            .collect();
        let d = max_diff(&got, &rows(&want["logits"]));
        assert!(d <= 1e-4, "{name}: text {i} logits differ by {d}");
        let ents = rec["entities"][i].as_array().unwrap();
        assert_eq!(
            p.entities.len(),
            ents.len(),
            "{name}: text {i}: {:?}",
            p.entities
        );
        for (e, w) in p.entities.iter().zip(ents) {
            assert_eq!(e.label, w["label"].as_str().unwrap(), "{name} text {i}");
            assert_eq!(
                e.start as u64,
                w["start"].as_u64().unwrap(),
                "{name} text {i}"
            );
            assert_eq!(e.end as u64, w["end"].as_u64().unwrap(), "{name} text {i}");
            let chars: Vec<char> = texts[i].chars().collect();
            assert_eq!(e.text, chars[e.start..e.end].iter().collect::<String>());
            assert!((e.score - w["score"].as_f64().unwrap()).abs() < 1e-4);
            grouped += usize::from(e.text.contains(' '));
        }
    }
    if name == "distilbert-token" {
        assert!(
            grouped > 0,
            "no entity spans several words: the grouping is untested"
        );
    }
    Ok(())
}

#[test]
fn bert_token_predictions_match_transformers_and_the_ner_pipeline() -> R {
    predictions_match("bert-token")
}

#[test]
fn distilbert_token_predictions_match_transformers_and_the_ner_pipeline() -> R {
    predictions_match("distilbert-token")
}

/// Byte-level BPE has no continuing-subword prefix: words are told apart by the spaces around
/// a token's start, as the pipeline's fallback does; `é` is two byte tokens on one character.
#[test]
fn roberta_token_predictions_match_transformers_and_the_ner_pipeline() -> R {
    predictions_match("roberta-token")
}

fn tokenizer(max_length: usize) -> BertTokenizer {
    BertTokenizer::from_dir(&fixture("bert-token"), max_length, 16).unwrap()
}

/// Pre-split words tokenise into transformers' ids and `word_ids()`; the first piece of a
/// word carries its tag, its other pieces and the special tokens -100, a character the
/// vocabulary lacks becomes `[UNK]` and keeps its word's tag.
#[test]
fn word_pieces_align_as_transformers_example_does() -> R {
    let rec = record("bert-token");
    let split = &rec["split_words"][0];
    let words: Vec<String> = serde_json::from_value(split["words"].clone())?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let pieces = tokenizer(16).encode_words(&words)?;
    let ids: Vec<u32> = serde_json::from_value(split["input_ids"].clone())?;
    let word_ids: Vec<Option<usize>> = serde_json::from_value(split["word_ids"].clone())?;
    assert_eq!(pieces.ids, ids);
    assert_eq!(pieces.words, word_ids);
    assert!(pieces.tokens.contains(&"[UNK]".to_string()));
    assert!(!pieces.truncated);
    // Johnson lives in Berlin é . → B-PER O O B-LOC B-MISC-less: tags as class ids.
    let tags = [1, 0, 0, 3, 5, 0];
    // [CLS] john ##son lives in ber ##lin [UNK] . [SEP]
    assert_eq!(
        align(&pieces, &tags, None),
        [-100, 1, -100, 0, 0, 3, -100, 5, 0, -100]
    );
    // Every piece labelled: a word's later pieces take I-X for B-X.
    let labels: Vec<String> = serde_json::from_value(rec["labels"].clone())?;
    let inside = inside_classes(&labels);
    assert_eq!(
        align(&pieces, &tags, Some(&inside)),
        [-100, 1, 2, 0, 0, 3, 4, 5, 0, -100]
    );
    Ok(())
}

/// A word longer than the window: truncation keeps its first pieces (the first one labelled)
/// and says the sentence was cut; the words after it have no target.
#[test]
fn a_word_longer_than_the_window_is_cut_and_counted() -> R {
    let pieces = tokenizer(4).encode_words(&["in", "johnson", "berlin"])?;
    // [CLS] in jo ##hn | ##son ber ##lin cut | [SEP]
    assert_eq!(pieces.tokens, ["[CLS]", "in", "john", "[SEP]"]);
    assert!(pieces.truncated);
    assert_eq!(align(&pieces, &[0, 1, 3], None), [-100, 0, 1, -100]);
    let whole = tokenizer(16).encode_words(&["in", "johnson", "berlin"])?;
    assert!(!whole.truncated);
    assert_eq!(whole.tokens.len(), 7);
    Ok(())
}

/// The loss is PyTorch's cross-entropy averaged over the tokens whose target is not -100,
/// computed here by hand from the logits.
#[test]
fn loss_is_cross_entropy_over_labelled_tokens() -> R {
    let (model, _) =
        TokenClassifier::<Bert>::from_pretrained(&fixture("bert-token"), &LoadOptions::default())?;
    let b = BertBatch {
        input_ids: Tensor::new(&[[2u32, 5, 27, 6, 3], [2, 15, 3, 0, 0]], &Device::Cpu)?,
        token_type_ids: None,
        attention_mask: Some(Tensor::new(
            &[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]],
            &Device::Cpu,
        )?),
    };
    let targets = [[-100i64, 1, -100, 0, -100], [-100, 3, -100, -100, -100]];
    let logits = model.forward_t(&b, false)?;
    let loss = model
        .loss(&logits, &Tensor::new(&targets, &Device::Cpu)?, 0.0)?
        .to_scalar::<f32>()? as f64;
    let l: Vec<Vec<Vec<f32>>> = logits.to_vec3()?;
    let (mut sum, mut n) = (0.0, 0.0);
    for (row, tg) in l.iter().zip(&targets) {
        for (z, &y) in row.iter().zip(tg).filter(|(_, &y)| y != -100) {
            let m = z.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
            let lse = m + z.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            sum += lse - z[y as usize] as f64;
            n += 1.0;
        }
    }
    assert!((loss - sum / n).abs() < 1e-4, "{loss} vs {}", sum / n);
    Ok(())
}

/// The export loads as a `BertForTokenClassification` with the labels and tokenizer files,
/// and reloads into the same logits.
#[test]
fn export_is_a_token_classifier_with_labels_and_tokenizer() -> R {
    let dir = std::env::temp_dir().join(format!("ft-token-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (model, _) =
        TokenClassifier::<Bert>::from_pretrained(&fixture("bert-token"), &LoadOptions::default())?;
    model.export_as(&dir, None)?;
    let config: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    assert_eq!(config["architectures"][0], "BertForTokenClassification");
    assert_eq!(config["id2label"]["1"], "B-PER");
    assert_eq!(config["label2id"]["I-ORG"], 6);
    assert!(dir.join("tokenizer.json").is_file());
    let (again, report) = TokenClassifier::<Bert>::from_pretrained(&dir, &LoadOptions::default())?;
    assert!(report.unused.is_empty() && report.newly_initialized.is_empty());
    let b = BertBatch {
        input_ids: Tensor::new(&[[2u32, 5, 27, 3]], &Device::Cpu)?,
        token_type_ids: None,
        attention_mask: None,
    };
    let d = (model.forward_t(&b, false)? - again.forward_t(&b, false)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert_eq!(d, 0.0);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// RoBERTa's byte-level BPE: pre-split words tokenise into the ids and `word_ids()`
/// transformers gives (`tests/fixtures/ner/roberta-words.json`, from the RoBERTa family
/// fixture's tokenizer); the fixture's model takes 10 tokens, so longer ones compare up to the
/// cut, which keeps the closing `</s>`.
#[test]
fn roberta_words_tokenise_as_transformers() -> R {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("tests/fixtures/ner/roberta-words.json");
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let tok = BertTokenizer::from_dir(&root.join("tests/fixtures/roberta"), 10, 10)?;
    let mut cut = 0;
    for case in rec["cases"].as_array().unwrap() {
        let words: Vec<String> = serde_json::from_value(case["words"].clone())?;
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let ids: Vec<u32> = serde_json::from_value(case["input_ids"].clone())?;
        let word_ids: Vec<Option<usize>> = serde_json::from_value(case["word_ids"].clone())?;
        let pieces = tok.encode_words(&words)?;
        let n = pieces.ids.len();
        assert_eq!(n, ids.len().min(10));
        assert_eq!(pieces.truncated, ids.len() > 10);
        cut += usize::from(pieces.truncated);
        assert_eq!(pieces.ids[..n - 1], ids[..n - 1], "{words:?}");
        assert_eq!(
            pieces.ids[n - 1],
            *ids.last().unwrap(),
            "{words:?}: </s> last"
        );
        assert_eq!(pieces.words[..n - 1], word_ids[..n - 1], "{words:?}");
    }
    assert_eq!(cut, 2);
    Ok(())
}
