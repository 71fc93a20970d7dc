//! The teacher of an image run (`--teacher`): an image classifier of any family fed the
//! student's input tensors (augmented, mixed, normalised as the student's), so both must
//! expect the same channels and normalisation; it is built at the student's input size (a ViT
//! resamples its position embeddings). A teacher normalising otherwise is refused.

use super::{ImageClassifier, ImageModelOptions};
use crate::families::ModelSource;
use crate::settings::RunSettings;
use crate::tasks::distill;
use anyhow::{bail, Context, Result};
use candle_core::Device;

/// The teacher resolved from `--teacher` (`source`), loaded in eval mode with every tensor
/// frozen and checked against the `student`; `None` without one.
pub(super) fn load(
    source: Option<&ModelSource>,
    s: &RunSettings,
    student: &ImageClassifier,
    device: &Device,
) -> Result<Option<ImageClassifier>> {
    let Some(source) = source else {
        return Ok(None);
    };
    finetune_train::distill::check_student(student.model())?;
    let name = &source.name;
    let input = student.preprocessing().input_size;
    let opts = ImageModelOptions {
        image_size: (input[1] == input[2]).then_some(input[1]),
        seed: s.train.seed,
        ..ImageModelOptions::default()
    };
    let teacher = ImageClassifier::from_source(source, &opts, device)
        .with_context(|| format!("--teacher {name}"))?;
    finetune_train::distill::check_student(teacher.model())
        .with_context(|| format!("--teacher {name}"))?;
    let (a, b) = (student.preprocessing(), teacher.preprocessing());
    if a.input_size != b.input_size || a.mean != b.mean || a.std != b.std {
        bail!(
            "--teacher {name} expects inputs {:?} normalised by mean {:?}, std {:?}, the model \
             trained {:?} by mean {:?}, std {:?}: the teacher reads the student's inputs, so \
             both must take the same",
            b.input_size,
            b.mean,
            b.std,
            a.input_size,
            a.mean,
            a.std
        );
    }
    distill::freeze(teacher.model().store())?;
    Ok(Some(teacher))
}
