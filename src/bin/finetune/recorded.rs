//! What `eval` and `predict` take from the training run that made the model: its
//! `run_config.json` (in the output folder and in every checkpoint) gives the defaults of the
//! data columns and the max length (the image size is in the exported model's config), so
//! that a model is evaluated on the data it was trained on without repeating the training
//! flags.

use anyhow::Result;
use candle_finetune::families::ModelSource;
use candle_finetune::settings::{RunSettings, RUN_CONFIG};
use std::fmt::Debug;
use std::path::PathBuf;

/// A model's recorded run settings (the flags' defaults when it has none), and which of them
/// a command took.
pub struct Recorded {
    settings: RunSettings,
    from: Option<PathBuf>,
    taken: Vec<String>,
}

impl Recorded {
    /// The record of `source`'s folder, if it has one.
    pub fn of(source: &ModelSource) -> Result<Self> {
        // An adapter's run is recorded beside it (a LoRA checkpoint) or in the export it sits
        // in (`OUT/adapter`), not in its base model's folder.
        let dir = match &source.adapter {
            Some(a) => [Some(a.clone()), a.parent().map(|p| p.to_path_buf())]
                .into_iter()
                .flatten()
                .find(|d| d.join(RUN_CONFIG).is_file()),
            None => source.files.as_ref().map(|f| f.dir.clone()),
        };
        // The record only supplies defaults: one that does not read is said and skipped.
        let settings = match dir.as_deref().map(RunSettings::recorded) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                eprintln!("warning: ignoring the run's settings: {e:#}");
                None
            }
            None => None,
        };
        Ok(Self {
            from: dir
                .filter(|_| settings.is_some())
                .map(|d| d.join(RUN_CONFIG)),
            settings: settings.unwrap_or_default(),
            taken: Vec::new(),
        })
    }

    /// `given` when the flag was given, else the run's value (noted when it is not the flag's
    /// default).
    pub fn pick<T: Clone + PartialEq + Debug>(
        &mut self,
        flag: &str,
        given: Option<T>,
        field: impl Fn(&RunSettings) -> T,
    ) -> T {
        if let Some(v) = given {
            return v;
        }
        let value = field(&self.settings);
        if self.from.is_some() && value != field(&RunSettings::default()) {
            self.taken.push(format!("--{flag} {}", shown(&value)));
        }
        value
    }

    /// One line on stderr naming the settings taken from the record, if any.
    pub fn announce(&self) {
        if let (Some(path), false) = (&self.from, self.taken.is_empty()) {
            eprintln!(
                "as the model was trained ({}): {}",
                path.display(),
                self.taken.join(", ")
            );
        }
    }
}

/// A setting's value as a flag's argument: `64` rather than `Some(64)`, `message` rather than
/// `"message"`.
fn shown<T: Debug>(v: &T) -> String {
    let text = format!("{v:?}");
    let inner = text
        .strip_prefix("Some(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(&text);
    inner.trim_matches('"').to_string()
}
