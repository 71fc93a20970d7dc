//! The teacher of a text run (`--teacher`): a text classifier of any family fed the student's
//! token ids, so both must share one tokenizer (a BERT-base teacher for a MiniLM student, both
//! on BERT's uncased WordPiece vocabulary); a teacher that tokenizes otherwise is refused
//! rather than tokenized for separately.

use super::{TextClassifier, TextModelOptions};
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
    student: &TextClassifier,
    device: &Device,
) -> Result<Option<TextClassifier>> {
    let Some(source) = source else {
        return Ok(None);
    };
    finetune_train::distill::check_student(student.model())?;
    let name = &source.name;
    let opts = TextModelOptions {
        labels: None,
        new_head: false,
        problem_type: None,
        max_length: Some(student.max_length()),
        dropout: None,
        seed: s.train.seed,
    };
    let teacher = TextClassifier::from_source(source, &opts, device)
        .with_context(|| format!("--teacher {name}"))?;
    finetune_train::distill::check_student(teacher.model())
        .with_context(|| format!("--teacher {name}"))?;
    if !student.tokenizer().same_ids_as(teacher.tokenizer()) {
        bail!(
            "--teacher {name} tokenizes text differently from the model trained (another \
             vocabulary, casing or padding): the teacher reads the student's token ids, so \
             both must share one tokenizer"
        );
    }
    distill::freeze(teacher.model().store())?;
    Ok(Some(teacher))
}
