//! Export to a folder that `transformers.AutoModelForSequenceClassification.from_pretrained`
//! and `AutoTokenizer.from_pretrained` load with no missing or unexpected keys:
//! `model.safetensors` (the prefixed naming + the head, `format: pt`), `config.json`
//! (`architectures` set), the tokenizer files of the source folder.

use crate::arch::{Architecture, EncoderConfig};
use crate::classifier::SequenceClassifier;
use candle_core::DType;
use finetune_core::model_io::{export_folder, torch_dtype};
use finetune_core::Result;
use std::path::Path;

impl<A: Architecture> SequenceClassifier<A> {
    /// Writes the model to `dir` (created if needed) in `dtype` (floating tensors only),
    /// copying the tokenizer files of the folder it was loaded from. Each file is written
    /// atomically.
    pub fn export_as(&self, dir: &Path, dtype: Option<DType>) -> Result<()> {
        let mut config = self.config().to_export_json();
        if let Some(d) = dtype {
            config["torch_dtype"] = serde_json::json!(torch_dtype(d));
        }
        let files = A::Config::TOKENIZER_FILES;
        export_folder(dir, self.store(), dtype, &config, self.source_dir(), files)
    }
}
