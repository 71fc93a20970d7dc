//! `finetune meta-train`: Reptile meta-learning of an image model's initialisation for
//! few-shot fine-tuning ([`finetune_train::reptile`]), from a checkpoint or an architecture,
//! over N-way K-shot tasks drawn from some classes of a labelled image dataset; optionally the
//! few-shot accuracy on held-out classes before and after. The result is a model folder, as
//! `finetune train` exports them, whose head (N outputs, zeroed) a fine-tune on new classes
//! replaces.
//!
//! - [`settings`]: the flags and settings file keys;
//! - [`classes`]: the data, and the classes tasks are drawn from.

pub mod classes;
pub mod settings;

pub use settings::{MetaJob, MetaSettings, META_CONFIG};

use crate::settings::Task;
use crate::tasks::augment::Augment;
use crate::tasks::image::{input_size, ImageClassifier, ImageModelOptions};
use crate::tasks::output::write_folder_atomically;
use anyhow::Result;
use finetune_core::ProblemType;
use finetune_data::{OnBadSample, SkipLog};
use finetune_train::reptile::{self, FewShotAccuracy, InnerLoop, MetaSummary};
use serde::Serialize;
use std::path::PathBuf;

/// What a meta-training run did.
#[derive(Debug, Clone, Serialize)]
pub struct MetaReport {
    /// The meta-trained model's folder.
    pub output: PathBuf,
    /// The meta steps and the support loss along them.
    pub summary: MetaSummary,
    /// Few-shot accuracy on `--eval-classes` from the starting weights (`None` without them).
    pub before: Option<FewShotAccuracy>,
    /// The same, from the meta-trained weights.
    pub after: Option<FewShotAccuracy>,
    /// Wall time of the run, in seconds.
    pub runtime_s: f64,
}

/// Meta-trains as `s` says (checked first, data read and checked before the model loads),
/// measures few-shot accuracy when `--eval-classes` are given, and writes the model folder
/// atomically; progress lines go to `say`.
pub fn meta_train(s: &MetaSettings, say: &mut dyn FnMut(String)) -> Result<MetaReport> {
    let started = std::time::Instant::now();
    let (model, output) = s.check()?;
    let data = classes::MetaData::read(s)?;
    let device = finetune_core::select_device(&s.job.device)?;
    let source = crate::families::resolve(model, false, Some(Task::ImageClassification))?;
    source.check_task(Task::ImageClassification)?;
    let r = &s.reptile;
    let opts = ImageModelOptions {
        labels: Some((0..r.ways).map(|i| format!("LABEL_{i}")).collect()),
        new_head: true,
        problem_type: Some(ProblemType::SingleLabelClassification),
        image_size: input_size::choose(s.job.image_size, source.files.is_none(), &data.images).0,
        channels: s.job.channels,
        drop_rate: None,
        seed: r.seed,
    };
    let clf = ImageClassifier::from_source(&source, &opts, &device)?;
    let batches = clf.batches(
        &data.images,
        &Augment::preset("none")?,
        r.seed,
        OnBadSample::Error,
        &SkipLog::new(),
    )?;
    let inner = InnerLoop::of(r).with_steps(s.job.eval_inner_steps.unwrap_or(r.inner_steps));
    let measure = |what: &str, say: &mut dyn FnMut(String)| -> Result<Option<FewShotAccuracy>> {
        let Some(eval) = &data.eval else {
            return Ok(None);
        };
        let acc = reptile::few_shot_accuracy(
            clf.model(),
            &batches,
            eval,
            &inner,
            s.job.eval_episodes,
            r.seed ^ EVAL_STREAM,
        )?;
        say(format!(
            "few-shot accuracy {what}: {:.2}% ± {:.2}% ({}-way {}-shot, {} episodes of the \
             held-out classes, 95% interval)",
            100.0 * acc.mean,
            100.0 * acc.ci95,
            r.ways,
            r.shots,
            acc.episodes
        ));
        Ok(Some(acc))
    };
    let before = measure("from the starting weights", say)?;
    let summary = reptile::meta_train(clf.model(), &batches, &data.train, r, say)?;
    let after = measure("after meta-training", say)?;
    let record = serde_json::to_vec_pretty(s)?;
    write_folder_atomically(output, |tmp| {
        clf.model().export_as(tmp, None)?;
        let path = tmp.join(META_CONFIG);
        std::fs::write(&path, &record).map_err(|e| finetune_core::Error::io(&path, e))
    })?;
    Ok(MetaReport {
        output: output.to_path_buf(),
        summary,
        before,
        after,
        runtime_s: started.elapsed().as_secs_f64(),
    })
}

/// Separates the evaluation episodes' random stream from meta-training's.
const EVAL_STREAM: u64 = 0x9e37_79b9_7f4a_7c15;
