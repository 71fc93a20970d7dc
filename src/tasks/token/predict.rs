//! `predict --json` for a token classifier: per input its entities, its tokens and one row of
//! logits per token (special tokens included, as transformers'
//! `model(**tokenizer(text)).logits[0]`). Entities are grouped as transformers' `ner`
//! pipeline groups them with `aggregation_strategy="first"`:
//!
//! 1. each token's probabilities are the softmax of its logits; special tokens are left out;
//! 2. a token continues the word before it when it is a later piece — for tokenizers with a
//!    continuing-subword prefix (WordPiece's `##`) when its string is not as long as the text
//!    it covers, for the others when no space is on either side of its start; never for the
//!    unknown token;
//! 3. a word takes the class its first token scores highest, with that probability;
//! 4. consecutive words of one entity type group into an entity unless a word's tag starts
//!    with `B-` (tags without `B-`/`I-` continue as `I-` would); the group's type is its first
//!    tag after the first `-`, its score the mean of its words', its span from the first
//!    word's start to the last one's end (character offsets into the input);
//! 5. groups of type `O` are dropped.

use finetune_bert::WordPieces;
use serde::Serialize;

/// One entity found in a text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntitySpan {
    /// Its type (`PER` for `B-PER` …).
    pub label: String,
    /// Its first character's offset in the input (characters, not bytes).
    pub start: usize,
    /// The offset after its last character.
    pub end: usize,
    /// The input's characters from `start` to `end`.
    pub text: String,
    /// The mean probability of its words' classes.
    pub score: f64,
}

/// A token classifier's prediction for one text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenPrediction {
    /// The entities, in text order.
    pub entities: Vec<EntitySpan>,
    /// The tokenizer's tokens, special tokens included.
    pub tokens: Vec<String>,
    /// One row of logits per token of `tokens`.
    pub logits: Vec<Vec<f32>>,
}

/// What tells a word's later pieces apart (see the module doc).
pub struct Words<'a> {
    /// The continuing-subword prefix of the tokenizer's model, when it has one.
    pub subword_prefix: Option<&'a str>,
    /// The unknown token, which always starts a word.
    pub unk: Option<&'a str>,
}

/// A word: its class, probability and span.
struct Word {
    tag: String,
    score: f64,
    start: usize,
    end: usize,
}

fn softmax_max(row: &[f32]) -> (usize, f64) {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - m).exp()).sum();
    let (i, &best) =
        row.iter().enumerate().fold(
            (0, &row[0]),
            |acc, (i, x)| if *x > *acc.1 { (i, x) } else { acc },
        );
    (i, (best as f64 - m).exp() / sum)
}

/// The pipeline's `B`/`I` and entity type of a tag.
fn bi_and_type(tag: &str) -> (char, &str) {
    match (tag.strip_prefix("B-"), tag.strip_prefix("I-")) {
        (Some(t), _) => ('B', t),
        (_, Some(t)) => ('I', t),
        _ => ('I', tag),
    }
}

impl TokenPrediction {
    /// The prediction of `logits` (one row per token of `pieces`) for `text`.
    pub fn new(
        text: &str,
        pieces: &WordPieces,
        logits: Vec<Vec<f32>>,
        labels: &[String],
        how: &Words,
    ) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let words = words(&chars, pieces, &logits, labels, how);
        Self {
            entities: group(&chars, &words),
            tokens: pieces.tokens.clone(),
            logits,
        }
    }
}

/// Whether token `i` of `pieces` continues the word before it.
fn is_subword(chars: &[char], pieces: &WordPieces, i: usize, how: &Words) -> bool {
    let token = &pieces.tokens[i];
    let (start, end) = pieces.offsets[i];
    if how.unk == Some(token.as_str()) {
        return false;
    }
    match how.subword_prefix.filter(|p| !p.is_empty()) {
        Some(_) => token.chars().count() != end.saturating_sub(start),
        None => start > 0 && !chars[start - 1..(start + 1).min(chars.len())].contains(&' '),
    }
}

fn words(
    chars: &[char],
    pieces: &WordPieces,
    logits: &[Vec<f32>],
    labels: &[String],
    how: &Words,
) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    for (i, row) in logits.iter().enumerate() {
        if pieces.special[i] {
            continue;
        }
        let (start, end) = pieces.offsets[i];
        match out.last_mut() {
            Some(w) if is_subword(chars, pieces, i, how) => w.end = end,
            _ => {
                let (class, score) = softmax_max(row);
                let tag = labels.get(class).cloned().unwrap_or_default();
                out.push(Word {
                    tag,
                    score,
                    start,
                    end,
                });
            }
        }
    }
    out
}

fn group(chars: &[char], words: &[Word]) -> Vec<EntitySpan> {
    let mut groups: Vec<Vec<&Word>> = Vec::new();
    for w in words {
        let joins = groups.last().is_some_and(|g| {
            let (bi, ty) = bi_and_type(&w.tag);
            let (_, last) = bi_and_type(&g[g.len() - 1].tag);
            ty == last && bi != 'B'
        });
        match groups.last_mut() {
            Some(g) if joins => g.push(w),
            _ => groups.push(vec![w]),
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let label = g[0]
                .tag
                .split_once('-')
                .map_or(g[0].tag.as_str(), |(_, t)| t);
            let (start, end) = (g[0].start, g[g.len() - 1].end);
            EntitySpan {
                label: label.to_string(),
                start,
                end,
                text: chars[start.min(chars.len())..end.min(chars.len())]
                    .iter()
                    .collect(),
                score: g.iter().map(|w| w.score).sum::<f64>() / g.len() as f64,
            }
        })
        .filter(|e| e.label != "O")
        .collect()
}
