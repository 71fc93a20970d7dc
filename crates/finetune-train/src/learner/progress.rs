//! What a run shows while it trains: a progress bar over the steps on a terminal, and lines
//! (the run's plan, evaluations, notices) above it — or straight to stderr when the bar is
//! hidden (`--no-progress`, or stderr not a terminal), with transformers' log lines
//! (`{'loss': …, 'learning_rate': …, 'epoch': …}`) so that a run under `nohup` or CI can be
//! followed.

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) struct Progress {
    bar: ProgressBar,
    /// Nothing on stderr at all ([`crate::Learner::quiet`]).
    quiet: bool,
}

impl Progress {
    /// A bar over `total` steps, `at` of them done (a resumed run); `quiet`: no bar and no line.
    pub(crate) fn new(enabled: bool, quiet: bool, total: u64, at: u64) -> Self {
        let bar = if enabled && !quiet {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps [{elapsed_precise} < {eta_precise}] {msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_position(at);
        Self { bar, quiet }
    }

    /// A line above the bar. A hidden bar drops what it is asked to print, so the line then
    /// goes straight to stderr.
    pub(crate) fn say(&self, msg: String) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            stderr_line(&msg);
        } else {
            self.bar.println(msg)
        }
    }

    /// A log line for a reader without the bar (transformers' dict lines, see
    /// [`crate::hf_log`]): on stderr when the bar is hidden, dropped when it is drawn (the bar
    /// shows the same figures).
    pub(crate) fn log(&self, line: String) {
        if self.bar.is_hidden() && !self.quiet {
            stderr_line(&line);
        }
    }

    /// Shows `msg` in place of the step figures (an evaluation's progress).
    pub(crate) fn message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    /// `done` steps, with the latest step's figures.
    pub(crate) fn step(&self, done: u64, msg: String) {
        self.bar.set_position(done);
        self.bar.set_message(msg);
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A line on stderr; a reader that went away (`| tee` ended by Ctrl-C) must not stop the run
/// before its Ctrl-C checkpoint, so a failed write is ignored.
fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
