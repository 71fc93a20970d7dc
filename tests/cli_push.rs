//! `finetune push` and `finetune train --push-to-hub` against the loopback Hub of
//! `finetune_hub::testing`, configured through the variables a user sets (`HF_ENDPOINT`,
//! `HF_TOKEN`, `HF_HOME`, `HF_HUB_OFFLINE`): a pushed model is one commit that downloads back;
//! the token comes from `--token`, `HF_TOKEN` or the token file and is never printed or
//! recorded; every bad input is one `error:` line with the CLI's exit status and no commit.

mod common;

use common::*;
use finetune_hub::testing::{Fault, HubServer, PushStep};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const TOKEN: &str = "hf_cli_write_token";

/// A loopback Hub of its own (`tag` keeps parallel tests apart) that takes [`TOKEN`]'s pushes.
fn hub(tag: &str) -> (PathBuf, HubServer) {
    let root = tmpdir(&format!("push-hub-{tag}"));
    let server = HubServer::start(&root);
    server.add_writer(TOKEN, "alice", &["alice", "org"]);
    (root, server)
}

/// A trained model's folder: a tiny BERT, a lock file and a checkpoint that stay home.
fn model(tag: &str) -> PathBuf {
    let dir = tmpdir(tag).join("model");
    write_tiny_bert(&dir, 3);
    std::fs::write(dir.join(".finetune.lock"), "").unwrap();
    std::fs::create_dir_all(dir.join("checkpoint-2")).unwrap();
    std::fs::write(dir.join("checkpoint-2/optimizer.json"), "{}").unwrap();
    dir
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The one line of a run refused before any work, and its exit status.
fn one_error(out: &Output) -> (i32, String) {
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line expected:\n{err}");
    last_error(out)
}

/// The `error:` line ending a failed run (after its progress lines), and its exit status.
fn last_error(out: &Output) -> (i32, String) {
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{err}");
    assert_eq!(err.lines().last(), Some(errors[0]), "{err}");
    assert!(errors[0].starts_with("error: "), "{err}");
    (out.status.code().unwrap(), errors[0].to_string())
}

#[test]
fn a_pushed_folder_is_one_commit_that_downloads_back() {
    let (_root, server) = hub("ok");
    let dir = model("push-ok");
    let home = tmpdir("push-home");
    let endpoint = server.endpoint();
    let env = [
        ("HF_ENDPOINT", endpoint.as_str()),
        ("HF_TOKEN", TOKEN),
        ("HF_HOME", home.to_str().unwrap()),
    ];
    let out = finetune_with_hub_env(
        &[
            "push",
            "--model",
            dir.to_str().unwrap(),
            "--repo",
            "org/tiny",
            "--json",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains(TOKEN) && !String::from_utf8_lossy(&out.stdout).contains(TOKEN));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["repo"], "org/tiny");
    assert_eq!(report["created"], true);
    assert_eq!(
        report["lfs_files"],
        serde_json::json!(["model.safetensors"])
    );

    let commits = server.commits();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].summary, "Upload model with candle-finetune");
    let names: Vec<&str> = commits[0].files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "config.json",
            "model.safetensors",
            "tokenizer_config.json",
            "vocab.txt"
        ]
    );
    for (name, bytes) in &commits[0].files {
        assert_eq!(bytes, &std::fs::read(dir.join(name)).unwrap(), "{name}");
    }

    // The pushed repository is a model `finetune` downloads and reads.
    let back = finetune_with_hub_env(&["inspect", "org/tiny", "--json"], &env);
    assert!(back.status.success(), "{}", stderr(&back));
    let local = finetune_with_hub_env(&["inspect", dir.to_str().unwrap(), "--json"], &env);
    let tensors =
        |o: &Output| serde_json::from_slice::<Value>(&o.stdout).unwrap()["tensors"].clone();
    assert_eq!(tensors(&back), tensors(&local));
}

#[test]
fn the_token_comes_from_the_flag_the_variable_or_the_token_file() {
    let (_root, server) = hub("token");
    let dir = model("push-token");
    let endpoint = server.endpoint();
    let home = tmpdir("push-token-home");
    std::fs::write(home.join("token"), format!("{TOKEN}\n")).unwrap();
    let home_s = home.to_str().unwrap();
    let args = [
        "push",
        "--model",
        dir.to_str().unwrap(),
        "--repo",
        "org/tiny",
    ];
    let from_file =
        finetune_with_hub_env(&args, &[("HF_ENDPOINT", &endpoint), ("HF_HOME", home_s)]);
    assert!(from_file.status.success(), "{}", stderr(&from_file));

    // --token wins over a wrong HF_TOKEN; the wrong one alone is refused by the Hub.
    let empty_home = tmpdir("push-token-none");
    let env = [
        ("HF_ENDPOINT", endpoint.as_str()),
        ("HF_HOME", empty_home.to_str().unwrap()),
        ("HF_TOKEN", "hf_wrong"),
    ];
    let flag = [&args[..], &["--token", TOKEN, "--revision", "dev"]].concat();
    let out = finetune_with_hub_env(&flag, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("@dev"), "{}", stderr(&out));
    let out = finetune_with_hub_env(&args, &env);
    let (code, line) = last_error(&out);
    assert_eq!(code, 1);
    assert!(
        line.contains("org/tiny: the Hub answered HTTP 401") && line.contains("invalid or expired"),
        "{line}"
    );
    assert!(!line.contains("hf_wrong"), "{line}");
    assert_eq!(server.commits().len(), 2);
}

/// A bad invocation: its arguments and environment, the exit status and what its line says.
struct Bad<'a> {
    args: Vec<&'a str>,
    env: Vec<(&'a str, &'a str)>,
    status: i32,
    says: &'a [&'a str],
}

#[test]
fn bad_input_is_one_line_with_the_clis_status_and_no_commit() {
    let (_root, server) = hub("bad");
    let dir = model("push-bad");
    let no_weights = tmpdir("push-bad-nomodel");
    std::fs::write(no_weights.join("config.json"), "{}").unwrap();
    let endpoint = server.endpoint();
    let empty_home = tmpdir("push-bad-home");
    let home = empty_home.to_str().unwrap();
    let d = dir.to_str().unwrap();
    let with_token = [
        ("HF_ENDPOINT", endpoint.as_str()),
        ("HF_HOME", home),
        ("HF_TOKEN", TOKEN),
    ];
    let cases = vec![
        Bad {
            args: vec!["--model", d, "--repo", "a/b/c"],
            env: with_token.to_vec(),
            status: 2,
            says: &["a/b/c: not a repository id", "`org/name`"],
        },
        Bad {
            args: vec!["--model", d, "--repo", "org/x@dev"],
            env: with_token.to_vec(),
            status: 2,
            says: &["--revision"],
        },
        Bad {
            args: vec!["--model", d, "--repo", "org/x", "--revision", "a/../b"],
            env: with_token.to_vec(),
            status: 2,
            says: &["revision `a/../b`"],
        },
        Bad {
            args: vec!["--model", d, "--repo", "org/x"],
            env: vec![("HF_ENDPOINT", endpoint.as_str()), ("HF_HOME", home)],
            status: 2,
            says: &["org/x: pushing needs a Hub token", "--token", "HF_TOKEN"],
        },
        Bad {
            args: vec!["--model", no_weights.to_str().unwrap(), "--repo", "org/x"],
            env: with_token.to_vec(),
            status: 1,
            says: &["not a model folder"],
        },
        Bad {
            args: vec!["--model", "/no/such/folder", "--repo", "org/x"],
            env: with_token.to_vec(),
            status: 1,
            says: &["no such folder"],
        },
        Bad {
            args: vec!["--model", d, "--repo", "org/x"],
            env: [&with_token[..], &[("HF_HUB_OFFLINE", "1")]].concat(),
            status: 1,
            says: &["org/x: HF_HUB_OFFLINE is set"],
        },
        Bad {
            args: vec!["--model", d, "--repo", "org/x"],
            env: vec![
                ("HF_ENDPOINT", "http://127.0.0.1:9"),
                ("HF_HOME", home),
                ("HF_TOKEN", TOKEN),
            ],
            status: 1,
            says: &["org/x: the Hub at http://127.0.0.1:9 could not be reached"],
        },
    ];
    for Bad {
        args,
        env,
        status,
        says,
    } in cases
    {
        let out = finetune_with_hub_env(&[&["push"], &args[..]].concat(), &env);
        let (code, line) = one_error(&out);
        assert_eq!(code, status, "{args:?}: {line}");
        for n in says {
            assert!(line.contains(n), "{args:?}: `{n}` not in {line}");
        }
        assert!(!line.contains(TOKEN), "{line}");
    }
    // A refused commit: one line naming the repository and what to do.
    server.inject_push(PushStep::Commit, Fault::Status(403));
    let out = finetune_with_hub_env(&["push", "--model", d, "--repo", "org/x"], &with_token);
    let (code, line) = last_error(&out);
    assert_eq!(code, 1);
    assert!(
        line.starts_with("error: org/x: the Hub answered HTTP 403 while committing"),
        "{line}"
    );
    assert!(
        line.contains("write access") && line.contains("nothing was committed"),
        "{line}"
    );
    assert!(server.commits().is_empty());
}

/// `finetune train` on a tiny BERT for 2 steps into `out`, with `extra` flags and `env`.
fn train(dir: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let model = dir.join("base");
    if !model.is_dir() {
        write_tiny_bert(&model, 2);
        write_sentiment_csv(&dir.join("train.csv"), 16, 1);
    }
    let mut args = text_train_args(&model, &dir.join("train.csv"), out);
    args.extend(["--max-steps", "2", "--save-steps", "1"].map(String::from));
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    finetune_with_hub_env(&args, env)
}

#[test]
fn train_pushes_its_export_and_never_records_the_token() {
    let (_root, server) = hub("train");
    let dir = tmpdir("push-train");
    let out = dir.join("run");
    let endpoint = server.endpoint();
    let home = tmpdir("push-train-home");
    let env = [
        ("HF_ENDPOINT", endpoint.as_str()),
        ("HF_HOME", home.to_str().unwrap()),
    ];
    let flags = [
        "--push-to-hub",
        "--hub-model-id",
        "org/run",
        "--hub-private-repo",
        "--hub-token",
        TOKEN,
        "--json",
    ];
    let run = train(&dir, &out, &flags, &env);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!stderr(&run).contains(TOKEN));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["hub"]["repo"], "org/run");
    assert_eq!(server.is_private("org/run"), Some(true));

    let commits = server.commits();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].summary, "End of training");
    let files = &commits[0].files;
    for f in [
        "config.json",
        "model.safetensors",
        "README.md",
        "run_config.json",
        "train_summary.json",
    ] {
        assert_eq!(files[f], std::fs::read(out.join(f)).unwrap(), "{f}");
    }
    assert!(out.join("checkpoint-2").is_dir());
    assert!(
        files
            .keys()
            .all(|f| !f.starts_with("checkpoint-") && !f.starts_with('.')),
        "{:?}",
        files.keys()
    );

    // The settings are recorded, the token nowhere in the output folder.
    let record: Value = serde_json::from_slice(&files["run_config.json"]).unwrap();
    assert_eq!(
        (
            record["push_to_hub"].as_bool(),
            record["hub_model_id"].as_str()
        ),
        (Some(true), Some("org/run"))
    );
    assert!(record.get("hub_token").is_none());
    for f in walk(&out) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "{}",
            f.display()
        );
    }
}

#[test]
fn train_refuses_a_push_it_could_not_make_before_training() {
    let (_root, server) = hub("train-bad");
    let dir = tmpdir("push-train-bad");
    let endpoint = server.endpoint();
    let home = tmpdir("push-train-bad-home");
    let env = [
        ("HF_ENDPOINT", endpoint.as_str()),
        ("HF_HOME", home.to_str().unwrap()),
    ];
    let cases = [
        Bad {
            args: vec!["--push-to-hub", "--hub-model-id", "org/run"],
            env: env.to_vec(),
            status: 2,
            says: &["pushing needs a Hub token", "--hub-token"],
        },
        Bad {
            args: vec![
                "--push-to-hub",
                "--hub-model-id",
                "a/b/c",
                "--hub-token",
                TOKEN,
            ],
            env: env.to_vec(),
            status: 2,
            says: &["--hub-model-id: a/b/c: not a repository id"],
        },
        Bad {
            args: vec!["--push-to-hub", "--hub-token", TOKEN],
            env: [&env[..], &[("HF_HUB_OFFLINE", "1")]].concat(),
            status: 1,
            says: &["HF_HUB_OFFLINE is set"],
        },
    ];
    for (i, bad) in cases.into_iter().enumerate() {
        let out = dir.join(format!("run{i}"));
        let run = train(&dir, &out, &bad.args, &bad.env);
        let (code, line) = one_error(&run);
        assert_eq!(code, bad.status, "{line}");
        for n in bad.says {
            assert!(line.contains(n), "`{n}` not in {line}");
        }
        assert!(
            !out.join("run_config.json").exists(),
            "refused before training"
        );
    }
    // A failing push after training keeps the model and says how to push it again.
    server.inject_push(PushStep::Commit, Fault::Status(500));
    let out = dir.join("run-fail");
    let run = train(&dir, &out, &["--push-to-hub", "--hub-token", TOKEN], &env);
    let (code, line) = last_error(&run);
    assert_eq!(code, 1);
    assert!(
        line.contains("alice/run-fail: the Hub answered HTTP 500"),
        "{line}"
    );
    assert!(
        line.contains("finetune push --model") && line.contains("--repo run-fail"),
        "{line}"
    );
    assert!(out.join("model.safetensors").is_file());
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
