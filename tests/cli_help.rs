//! `finetune train --help` as a newcomer reads it: the flags grouped under headings by purpose,
//! each with a description, defaults shown; `-h` short, `--help` with the details.

mod common;

use common::*;

const HEADINGS: [&str; 14] = [
    "Run:",
    "Model:",
    "Devices:",
    "Data:",
    "Text data:",
    "Image data:",
    "LoRA:",
    "Training:",
    "Optimizer and schedule:",
    "Freezing and LR groups:",
    "Regularisation:",
    "Evaluation and checkpoints:",
    "Logging:",
    "Hub:",
];

#[test]
fn train_help_groups_every_flag_with_a_description_and_its_default() {
    let short = finetune_ok(&["train", "-h"]);
    let mut at = 0;
    for h in HEADINGS {
        let pos = short
            .lines()
            .position(|l| l == h)
            .unwrap_or_else(|| panic!("no heading {h:?}:\n{short}"));
        assert!(pos >= at, "{h:?} out of order:\n{short}");
        at = pos;
    }
    let lines: Vec<&str> = short.lines().collect();
    let mut flags = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("--") else {
            continue;
        };
        flags += 1;
        // `--flag <ARG>  description` on one line, or the description on the next.
        let words: Vec<&str> = rest.split("  ").filter(|w| !w.trim().is_empty()).collect();
        let next_is_text = lines
            .get(i + 1)
            .is_some_and(|n| n.starts_with("          ") && !n.trim_start().starts_with("--"));
        assert!(words.len() > 1 || next_is_text, "no description: {line}");
        assert!(!line.contains("[`"), "a rustdoc link in the help: {line}");
    }
    assert!(flags > 50, "{flags} flags found");
    for needle in [
        "[default: 0.00005]",
        "[default: adamw]",
        "[default: 16]",
        "[default: auto]",
    ] {
        assert!(short.contains(needle), "{needle} missing:\n{short}");
    }
    let long = finetune_ok(&["train", "--help"]);
    assert!(
        long.lines().count() > short.lines().count(),
        "--help adds the details"
    );
    assert!(
        long.contains("Possible values:"),
        "--help explains each value"
    );
}
