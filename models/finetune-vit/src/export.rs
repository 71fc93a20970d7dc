//! Export for transformers: `model.safetensors` under `ViTForImageClassification`'s names, its
//! `config.json` (`architectures`, `model_type: vit`, `id2label`/`label2id`, the input size
//! trained at) and a `preprocessor_config.json` of `ViTImageProcessor`. Loading it:
//!
//! ```text
//! AutoModelForImageClassification.from_pretrained(dir)
//! AutoImageProcessor.from_pretrained(dir)
//! ```

use crate::model::ViT;
use candle_core::DType;
use finetune_core::fsutil::write_bytes_atomically;
use finetune_core::model_io::export_folder;
use finetune_core::{Error, Result};
use std::path::Path;

/// The preprocessing file an export carries.
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";

impl ViT {
    /// Writes the model to `dir` (created if needed), floating tensors in `dtype` when given.
    /// Each file is written atomically.
    pub fn export_as(&self, dir: &Path, dtype: Option<DType>) -> Result<()> {
        export_folder(
            dir,
            self.store(),
            dtype,
            &self.config().to_export_json(),
            None,
            &[],
        )?;
        let pre = self.preprocessing().to_vit_processor_json();
        let text = serde_json::to_vec_pretty(&pre).map_err(|e| Error::config(e.to_string()))?;
        write_bytes_atomically(&dir.join(PREPROCESSOR_FILE), &text)
    }
}
