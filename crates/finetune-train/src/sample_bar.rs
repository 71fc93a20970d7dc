//! A progress bar over the samples of an evaluation or a prediction, so that a long one is not
//! a silent wait: drawn on stderr when it is a terminal, hidden otherwise (a pipe or a file
//! gets no bar characters).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting the samples done out of a total; cleared when dropped.
pub struct SampleBar {
    bar: ProgressBar,
}

impl SampleBar {
    /// A bar over `total` samples labelled `what` (`evaluating`, `predicting`), on stderr when
    /// it is a terminal.
    pub fn new(what: &str, total: usize) -> Self {
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} samples [{{elapsed_precise}} < {{eta_precise}}]"
        )) {
            bar.set_style(style);
        }
        Self { bar }
    }

    /// A bar that draws nothing.
    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    /// `done` samples of the total are done.
    pub fn set(&self, done: usize) {
        self.bar.set_position(done as u64);
    }
}

impl Drop for SampleBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
