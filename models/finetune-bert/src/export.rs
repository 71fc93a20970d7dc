//! Export to a folder that `transformers.AutoModelForSequenceClassification.from_pretrained`
//! and `AutoTokenizer.from_pretrained` load with no missing or unexpected keys:
//! `model.safetensors` (the prefixed naming + the head, `format: pt`), `config.json`
//! (`architectures` set), the tokenizer files of the source folder; and the encoder alone as
//! the family's base model (`BertModel`), which several task heads can share.

use crate::arch::{Architecture, EncoderConfig};
use crate::classifier::SequenceClassifier;
use candle_core::DType;
use finetune_core::model_io::{export_folder, torch_dtype};
use finetune_core::{ParamStore, Result};
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

    /// Writes the encoder without the task head as transformers' base model of the family
    /// (`BertModel` for BERT): the tensors outside the head under the bare naming (no
    /// `bert.` prefix), `config.json` naming the base architecture without the head's labels
    /// and problem type, and the tokenizer files. `AutoModel.from_pretrained` loads it.
    pub fn export_encoder_as(&self, dir: &Path, dtype: Option<DType>) -> Result<()> {
        let naming = A::Config::NAMING;
        let prefix = format!("{}.", naming.prefix);
        let bare = ParamStore::new();
        for info in self.store().infos() {
            let first = info.name.split('.').next().unwrap_or_default();
            if naming.head.contains(&first) {
                continue;
            }
            let name = info.name.strip_prefix(&prefix).unwrap_or(&info.name);
            bare.insert(name, &self.store().get(&info.name)?, info.kind)?;
        }
        let mut config = self.config().to_export_json();
        let task_model = config["architectures"][0].as_str().unwrap_or_default();
        let base = task_model.replace("ForSequenceClassification", "Model");
        if let Some(obj) = config.as_object_mut() {
            for key in ["id2label", "label2id", "problem_type", "num_labels"] {
                obj.remove(key);
            }
            obj.insert("architectures".into(), serde_json::json!([base]));
        }
        if let Some(d) = dtype {
            config["torch_dtype"] = serde_json::json!(torch_dtype(d));
        }
        let files = A::Config::TOKENIZER_FILES;
        export_folder(dir, &bare, dtype, &config, self.source_dir(), files)
    }
}
