//! Export to a folder that timm and torchvision load with no missing or unexpected keys:
//! `model.safetensors` (torchvision names, BatchNorm buffers included, `num_batches_tracked`
//! as `i64`, `format: pt`) and a timm `config.json` (`architecture`, `num_classes`,
//! `num_features`, `label_names`, `model_args` for non-standard geometry, `pretrained_cfg` with
//! the preprocessing). Loading it:
//!
//! ```text
//! timm.create_model(f"local-dir:{dir}", pretrained=True)
//! timm.create_model("resnet50", num_classes=N, pretrained=True,
//!                   pretrained_cfg_overlay={"file": f"{dir}/model.safetensors", "num_classes": N})
//! torchvision.models.resnet50(num_classes=N).load_state_dict(
//!     safetensors.torch.load_file(f"{dir}/model.safetensors"), strict=True)
//! ```
//!
//! With `pretrained_cfg_overlay`, `num_classes` must be in the overlay too: otherwise timm
//! compares N with the default pretrained_cfg's 1000 classes and silently re-initialises `fc`.
//! A stem width other than 64 (see [`crate::config::STEM_KEY`]) has no timm/torchvision
//! counterpart; such exports load here only.

use crate::model::ResNet;
use candle_core::DType;
use finetune_core::model_io::export_folder;
use finetune_core::Result;
use std::path::Path;

impl ResNet {
    /// Writes the model to `dir` (created if needed), floating tensors in `dtype` when given.
    /// Each file is written atomically.
    pub fn export_as(&self, dir: &Path, dtype: Option<DType>) -> Result<()> {
        let config = self.config().to_timm_json();
        export_folder(dir, self.store(), dtype, &config, None, &[])
    }
}
