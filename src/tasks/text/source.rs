//! Text records as model batches, tokenised on demand.

use candle_core::Device;
use finetune_bert::{BertBatch, BertTokenizer};
use finetune_data::text::{Target, TextRecord};
use finetune_train::{Batch, BatchSource};

/// Records tokenised per batch by a classifier's tokenizer.
pub struct TextBatches<'a> {
    /// The data set: texts (and pairs) with their label ids.
    pub records: &'a [TextRecord],
    /// Tokenises each batch, padding to its longest text and truncating to its max length.
    pub tokenizer: &'a BertTokenizer,
    /// The model's outputs: the width of multi-label targets.
    pub outputs: usize,
    /// Where the batches' tensors go.
    pub device: Device,
}

impl BatchSource<BertBatch> for TextBatches<'_> {
    fn len(&self) -> usize {
        self.records.len()
    }

    /// Tokenisation does not depend on the epoch; a text's ids only gain padding in a batch.
    fn deterministic_train(&self) -> bool {
        true
    }

    fn batch(
        &self,
        indices: &[usize],
        _epoch: u64,
        _train: bool,
    ) -> finetune_core::Result<Batch<BertBatch>> {
        let rows: Vec<&TextRecord> = indices.iter().map(|&i| &self.records[i]).collect();
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let pairs: Option<Vec<&str>> = rows.iter().map(|r| r.pair.as_deref()).collect();
        let inputs = self
            .tokenizer
            .batch(&texts, pairs.as_deref(), &self.device)?;
        let targets: Vec<&Target> = rows.iter().map(|r| &r.target).collect();
        Ok(Batch {
            inputs,
            targets: Target::collate(&targets, self.outputs, &self.device)?,
            teacher: None,
        })
    }
}
