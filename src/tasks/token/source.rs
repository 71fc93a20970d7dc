//! Tagged sentences as model batches: tokenised once (words → pieces, tags → aligned
//! targets), padded per batch; the targets of padding are [`IGNORE_INDEX`].

use super::align::align;
use super::data::TagRecord;
use candle_core::{Device, Tensor};
use finetune_bert::{BertBatch, BertTokenizer, WordPieces};
use finetune_core::model::IGNORE_INDEX;
use finetune_train::{Batch, BatchSource};

/// Sentences tokenised by a tagger's tokenizer, with their per-piece targets.
pub struct TokenBatches<'a> {
    tokenizer: &'a BertTokenizer,
    rows: Vec<(WordPieces, Vec<i64>)>,
    device: Device,
}

impl<'a> TokenBatches<'a> {
    /// `records` tokenised by `tokenizer`; `inside` as [`align`] takes it.
    pub fn new(
        records: &[TagRecord],
        tokenizer: &'a BertTokenizer,
        inside: Option<&[usize]>,
        device: &Device,
    ) -> finetune_core::Result<Self> {
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            let words: Vec<&str> = r.words.iter().map(String::as_str).collect();
            let pieces = tokenizer.encode_words(&words)?;
            let targets = align(&pieces, &r.tags, inside);
            rows.push((pieces, targets));
        }
        Ok(Self {
            tokenizer,
            rows,
            device: device.clone(),
        })
    }

    /// How many sentences truncation cut (their last words carry no target).
    pub fn truncated(&self) -> usize {
        self.rows.iter().filter(|(p, _)| p.truncated).count()
    }
}

impl BatchSource<BertBatch> for TokenBatches<'_> {
    fn len(&self) -> usize {
        self.rows.len()
    }

    /// Tokenised once; a sentence only gains padding in a batch.
    fn deterministic_train(&self) -> bool {
        true
    }

    fn batch(
        &self,
        indices: &[usize],
        _epoch: u64,
        _train: bool,
    ) -> finetune_core::Result<Batch<BertBatch>> {
        let rows: Vec<&(WordPieces, Vec<i64>)> = indices.iter().map(|&i| &self.rows[i]).collect();
        let pieces: Vec<&WordPieces> = rows.iter().map(|(p, _)| p).collect();
        let inputs = self.tokenizer.pad(&pieces, &self.device)?;
        let t = inputs.input_ids.dim(1)?;
        let mut targets = Vec::with_capacity(rows.len() * t);
        for (_, tg) in &rows {
            targets.extend(tg.iter().copied());
            targets.extend(std::iter::repeat_n(IGNORE_INDEX, t - tg.len()));
        }
        Ok(Batch {
            inputs,
            targets: Tensor::from_vec(targets, (rows.len(), t), &self.device)?,
            teacher: None,
        })
    }
}
