//! The README's commands work as printed. Every `finetune` command in its shell blocks runs
//! against the fetched assets: `inspect` and `lr-schedule` in full, `train` with `--dry-run`
//! (settings checked and resolved, nothing read or written); `eval`, `predict`, `export` and
//! `push` name outputs of earlier commands, so they must get past the argument parser (a usage
//! error exits 2; `push` gets a placeholder token and stays offline). Every `cargo run --example` names an example that exists, every script a script.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The commands of the README's `sh` blocks: continuation lines joined, comments cut,
/// placeholder lines (`...`) left out.
fn commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut current = String::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = line.split(" # ").next().unwrap_or("").trim_end();
        match code.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(code);
                let cmd = current.trim().to_string();
                if !cmd.is_empty() && !cmd.contains("...") {
                    out.push(cmd);
                }
                current.clear();
            }
        }
    }
    out
}

/// Shell words: whitespace-separated, with '…' and "…" quoting.
fn words(cmd: &str) -> Vec<String> {
    let (mut out, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in cmd.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (_, c) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

fn run_finetune(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_finetune"))
        .args(args)
        .current_dir(ROOT)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_TOKEN", "hf_readme_placeholder")
        .output()
        .unwrap()
}

#[test]
fn every_readme_command_runs_or_parses() {
    assert!(
        Path::new(ROOT).join("assets/minilm").is_dir(),
        "assets/minilm is missing: run scripts/fetch-assets.sh first"
    );
    let cmds = commands();
    let mut checked = 0;
    // The resolved settings of each `--output` the README trains into (from `--dry-run`), so
    // that a later `--resume` of it finds its run's record.
    let mut records: Vec<(String, String)> = Vec::new();
    for cmd in &cmds {
        for part in cmd.split("&&").map(str::trim) {
            let w = words(part);
            match w.first().map(String::as_str) {
                Some("finetune") => {
                    let args = with_record(&w[1..], &records);
                    if let Some(json) = check_finetune(part, &args) {
                        records.push((flag_value(&w, "--output").unwrap_or_default(), json));
                    }
                    checked += 1;
                }
                Some("cargo") if w.iter().any(|a| a == "--example") => {
                    let pos = w.iter().position(|a| a == "--example").unwrap();
                    let example = Path::new(ROOT).join(format!("examples/{}.rs", w[pos + 1]));
                    assert!(example.is_file(), "`{part}`: no {}", example.display());
                }
                Some("cargo") => {}
                Some(script) if script.starts_with("scripts/") => {
                    assert!(
                        Path::new(ROOT).join(script).is_file(),
                        "`{part}`: no {script}"
                    );
                }
                other => panic!("`{part}`: an unexpected command {other:?} in the README"),
            }
        }
    }
    assert!(
        checked >= 8,
        "only {checked} finetune commands found in {cmds:#?}"
    );
}

/// The value after `flag` in `words`.
fn flag_value(words: &[String], flag: &str) -> Option<String> {
    let at = words.iter().position(|w| w == flag)?;
    words.get(at + 1).cloned()
}

/// `args`, and for a `--resume` of a folder the README trained into, the `--output` replaced by
/// a scratch folder holding that run's record (`run_config.json`).
fn with_record(args: &[String], records: &[(String, String)]) -> Vec<String> {
    let output = flag_value(args, "--output");
    let record = records
        .iter()
        .rev()
        .find(|(o, _)| Some(o) == output.as_ref());
    let (Some(output), Some((_, json)), true) =
        (output, record, args.iter().any(|a| a == "--resume"))
    else {
        return args.to_vec();
    };
    let dir = std::env::temp_dir()
        .join(format!("readme-resume-{}", std::process::id()))
        .join(&output);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("run_config.json"), json).unwrap();
    let at = args.iter().position(|a| a == "--output").unwrap();
    let mut out = args.to_vec();
    out[at + 1] = dir.to_str().unwrap().to_string();
    out
}

/// Runs one README command (`train` as `--dry-run`); returns a train command's resolved
/// settings.
fn check_finetune(cmd: &str, args: &[String]) -> Option<String> {
    let mut args = args.to_vec();
    let sub = args.first().cloned().unwrap_or_default();
    if sub == "train" {
        args.push("--dry-run".into());
    }
    let out = run_finetune(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match sub.as_str() {
        "train" | "inspect" | "lr-schedule" => {
            assert!(out.status.success(), "`{cmd}` failed: {stderr}");
            if args.iter().any(|a| a == "--json") || sub == "train" {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("`{cmd}`: stdout is not JSON ({e})"));
                assert!(!v.is_null(), "`{cmd}`");
            }
            (sub == "train").then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        }
        _ => {
            assert_ne!(
                out.status.code(),
                Some(2),
                "`{cmd}`: a usage error: {stderr}"
            );
            assert!(!stderr.contains("unexpected argument"), "`{cmd}`: {stderr}");
            None
        }
    }
}

#[test]
fn words_split_like_a_shell() {
    assert_eq!(
        words("a 'b c' \"d\" e'f'"),
        ["a", "b c", "d", "ef"].map(String::from)
    );
    assert_eq!(words("  x  "), ["x"]);
}
