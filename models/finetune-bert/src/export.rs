//! Export to a folder that `transformers.AutoModelForSequenceClassification.from_pretrained`
//! and `AutoTokenizer.from_pretrained` load with no missing or unexpected keys:
//! `model.safetensors` (`bert.*` + `classifier.*`, `format: pt`), `config.json`, tokenizer files.

use crate::classifier::BertForSequenceClassification;
use candle_core::DType;
use finetune_core::fsutil::write_bytes_atomically;
use finetune_core::safetensors_io::save_tensors;
use finetune_core::{Error, Result};
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
    /// copying tokenizer files from `tokenizer_dir`. Each file is written atomically.
    pub fn export(
        &self,
        dir: &Path,
        dtype: Option<DType>,
        tokenizer_dir: Option<&Path>,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tensors = self
            .store()
            .tensors()
            .into_iter()
            .map(|(n, t)| match dtype {
                Some(d) if t.dtype().is_float() => Ok((n, t.to_dtype(d)?)),
                _ => Ok((n, t)),
            })
            .collect::<Result<Vec<_>>>()?;
        save_tensors(&dir.join("model.safetensors"), &tensors)?;
        let mut config = self.config().to_export_json();
        if let Some(d) = dtype {
            let name = match d {
                DType::F16 => "float16",
                DType::BF16 => "bfloat16",
                _ => "float32",
            };
            config["torch_dtype"] = serde_json::json!(name);
        }
        let text = serde_json::to_vec_pretty(&config).map_err(|e| Error::config(e.to_string()))?;
        write_bytes_atomically(&dir.join("config.json"), &text)?;
        if let Some(src) = tokenizer_dir {
            for f in TOKENIZER_FILES {
                let from = src.join(f);
                if from.is_file() && from != dir.join(f) {
                    let bytes = std::fs::read(&from).map_err(|e| Error::io(&from, e))?;
                    write_bytes_atomically(&dir.join(f), &bytes)?;
                }
            }
        }
        Ok(())
    }
}
