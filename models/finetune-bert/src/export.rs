//! Export to a folder that `transformers.AutoModelForSequenceClassification.from_pretrained`
//! and `AutoTokenizer.from_pretrained` load with no missing or unexpected keys:
//! `model.safetensors` (`bert.*` + `classifier.*`, `format: pt`), `config.json`, tokenizer files.

use crate::classifier::BertForSequenceClassification;
use candle_core::DType;
use finetune_core::model_io::{export_folder, torch_dtype};
use finetune_core::Result;
use std::path::Path;

/// The tokenizer files copied on export, when the source folder has them.
pub const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
];

impl BertForSequenceClassification {
    /// Writes the model to `dir` (created if needed) in `dtype` (floating tensors only),
    /// copying the tokenizer files of the folder it was loaded from. Each file is written
    /// atomically.
    pub fn export_as(&self, dir: &Path, dtype: Option<DType>) -> Result<()> {
        let mut config = self.config().to_export_json();
        if let Some(d) = dtype {
            config["torch_dtype"] = serde_json::json!(torch_dtype(d));
        }
        let from = self.source_dir();
        export_folder(dir, self.store(), dtype, &config, from, &TOKENIZER_FILES)
    }
}
