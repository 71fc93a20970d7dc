//! Errors a newcomer meets, each one short line that says what to do: transformers'
//! settings-file keys that have no setting here get a pointed message (what to use instead)
//! rather than the list of known keys, and every setting a message points to exists; a
//! relative `--model` path that does not exist says so first, not in a paragraph of network
//! advice.

mod common;

use candle_finetune::settings::RunSettings;
use candle_finetune::train::foreign_keys;
use common::*;

#[test]
fn every_key_a_hint_points_to_exists() {
    let keys = candle_finetune::train::settings::file_keys(&RunSettings::command());
    for (key, hint) in foreign_keys::all() {
        assert!(
            !keys.contains_key(key),
            "`{key}` is a setting here: no hint needed"
        );
        for named in hint.split('`').skip(1).step_by(2) {
            if named.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                assert!(
                    keys.contains_key(named),
                    "the hint for {key} names `{named}`"
                );
            }
        }
    }
}

#[test]
fn a_transformers_only_key_gets_a_pointed_one_line_error() {
    let dir = tmpdir("settings-hints");
    let model = dir.join("tiny-bert");
    write_tiny_bert(&model, 4);
    let train = dir.join("train.csv");
    write_sentiment_csv(&train, 16, 1);
    for (line, needles) in [
        (
            "save_strategy = \"epoch\"",
            &[
                "\"save_strategy\" (a transformers setting) is not supported",
                "--save-steps",
            ][..],
        ),
        ("adam_beta1 = 0.8", &["\"adam_beta1\"", "use --betas"][..]),
        ("tf32 = true", &["\"tf32\"", "training runs in f32"][..]),
    ] {
        let file = dir.join("run.toml");
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let mut args = text_train_args(&model, &train, &dir.join("out"));
        args.extend(["--config".to_string(), file.to_str().unwrap().to_string()]);
        let run = finetune(&args);
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains("the known keys"), "{err}");
        for n in needles {
            assert!(err.contains(n), "missing {n:?}: {err}");
        }
        assert!(!dir.join("out").exists());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_relative_folder_is_said_first_in_one_short_line() {
    let home = tmpdir("messages-home");
    let run = finetune_with_hub_env(
        &["inspect", "models/not-here"],
        &[
            ("HF_ENDPOINT", "http://127.0.0.1:9"),
            ("HF_HOME", home.to_str().unwrap()),
        ],
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: models/not-here: no such local folder, and as a Hub id: the Hub (http://127.0.0.1:9) is unreachable"),
        "{err}"
    );
    assert!(err.len() < 300, "{} characters: {err}", err.len());
    std::fs::remove_dir_all(&home).ok();
}
