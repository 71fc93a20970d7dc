//! Download progress: one indicatif bar per file on stderr, drawn only when stdout and stderr are
//! both terminals (piped or logged runs stay quiet). Plugs into hf-hub's `Progress` hook.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Whether bars should be drawn at all: asked for, and both streams are terminals.
pub fn enabled(wanted: bool) -> bool {
    wanted && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// A bar for one file, or nothing.
pub(crate) struct FileBar {
    bar: Option<ProgressBar>,
    label: String,
}

impl FileBar {
    pub(crate) fn new(show: bool, label: String) -> Self {
        FileBar {
            bar: show.then(ProgressBar::hidden),
            label,
        }
    }
}

impl hf_hub::api::Progress for FileBar {
    /// hf-hub calls this before the request and again before reading the body.
    fn init(&mut self, size: usize, _filename: &str) {
        let Some(bar) = &self.bar else { return };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(self.label.clone());
        bar.set_length(size as u64);
        bar.set_position(0);
    }

    fn update(&mut self, size: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(size as u64);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
