//! The images of a meta-training run and the classes its episodes are drawn from: the
//! meta-training classes (`--classes`, else all) and the held-out ones (`--eval-classes`),
//! named as the data names its classes, disjoint, each checked against the episodes' needs.

use super::settings::MetaSettings;
use crate::tasks::image::open_image_data;
use anyhow::{bail, Result};
use finetune_data::image::{ImageDataset, ImageOpenOptions};
use finetune_data::SkipLog;
use finetune_train::reptile::EpisodeSampler;

/// The data and the episode samplers of a run.
pub(super) struct MetaData {
    pub(super) images: ImageDataset,
    pub(super) train: EpisodeSampler,
    pub(super) eval: Option<EpisodeSampler>,
}

impl MetaData {
    /// Opens `--train` and checks the classes against it.
    pub(super) fn read(s: &MetaSettings) -> Result<Self> {
        let j = &s.job;
        let images = open_image_data(
            &j.train,
            &ImageOpenOptions {
                split: "train".into(),
                label_column: j.label_column.clone(),
                image_column: j.image_column.clone(),
                skipped: SkipLog::new(),
                ..ImageOpenOptions::default()
            },
        )?;
        let names = images.class_names().to_vec();
        let train_ids = match &j.classes {
            Some(c) => ids(c, &names, "--classes")?,
            None => (0..names.len()).collect(),
        };
        let eval_ids = match &j.eval_classes {
            Some(c) => Some(ids(c, &names, "--eval-classes")?),
            None => None,
        };
        if let Some(shared) = eval_ids.iter().flatten().find(|c| train_ids.contains(c)) {
            bail!(
                "class \"{}\" is in both --classes and --eval-classes: few-shot accuracy is \
                 measured on classes meta-training never saw",
                names[*shared]
            );
        }
        let r = &s.reptile;
        let sampler = |ids: &[usize], flag: &str| {
            EpisodeSampler::new(images.labels(), &names, ids, r.ways, r.shots, r.query_shots)
                .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
        };
        let train = sampler(&train_ids, "--classes")?;
        let eval = eval_ids
            .map(|ids| sampler(&ids, "--eval-classes"))
            .transpose()?;
        Ok(Self {
            images,
            train,
            eval,
        })
    }
}

/// The class ids of `wanted` names among `names` (the data's classes); an unknown name is an
/// error listing the known ones.
fn ids(wanted: &[String], names: &[String], flag: &str) -> Result<Vec<usize>> {
    wanted
        .iter()
        .map(|w| match names.iter().position(|n| n == w) {
            Some(i) => Ok(i),
            None => bail!(
                "{flag}: \"{w}\" is not a class of --train (its classes: {})",
                names.join(", ")
            ),
        })
        .collect()
}
