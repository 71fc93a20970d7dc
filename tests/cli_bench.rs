//! `finetune bench ops`: the JSON schema and the table, at tiny shapes (hidden `--tiny` flag;
//! the real shapes take minutes), and argument errors.

use std::process::Command;

fn finetune(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_finetune"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn json_has_op_shape_fused_s_composed_s_for_every_op() {
    let out = finetune(&["bench", "ops", "--json", "--tiny", "--runs", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let rows = v.as_array().expect("a JSON array");
    assert!(rows.len() >= 8, "{rows:?}");
    for row in rows {
        let obj = row.as_object().expect("objects");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["composed_s", "fused_s", "op", "shape"]);
        assert!(obj["op"].is_string());
        let shape = obj["shape"].as_array().expect("shape is an array");
        assert!(!shape.is_empty() && shape.iter().all(|d| d.as_u64().is_some_and(|d| d > 0)));
        for k in ["fused_s", "composed_s"] {
            let s = obj[k].as_f64().expect("seconds are numbers");
            assert!(s >= 0.0 && s.is_finite(), "{k} = {s}");
        }
    }
    let ops: Vec<&str> = rows.iter().map(|r| r["op"].as_str().unwrap()).collect();
    for name in ["layer_norm", "softmax_last_dim", "gelu", "cross_entropy"] {
        assert!(ops.contains(&name), "{name} missing from {ops:?}");
    }
    for prefix in ["max_pool2d", "conv2d", "batch_norm_train"] {
        assert!(
            ops.iter().any(|o| o.starts_with(prefix)),
            "{prefix}: {ops:?}"
        );
    }
}

#[test]
fn table_names_each_op_and_the_speedup() {
    let out = finetune(&["bench", "ops", "--tiny", "--runs", "1"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("fused (ms)") && text.contains("speedup"),
        "{text}"
    );
    assert!(
        text.contains("layer_norm") && text.contains("cross_entropy"),
        "{text}"
    );
}

#[test]
fn zero_runs_is_a_clear_error() {
    let out = finetune(&["bench", "ops", "--tiny", "--runs", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--runs"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn tiny_flag_is_hidden_from_help() {
    let out = finetune(&["bench", "ops", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--json") && !help.contains("--tiny"),
        "{help}"
    );
}
