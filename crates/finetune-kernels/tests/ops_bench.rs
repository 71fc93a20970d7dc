//! `bench::bench_ops` at tiny shapes: it runs every op both ways and reports the documented JSON
//! fields (the schema only: no assertion on the timings; `tests/cli_bench.rs` runs the binary).

use finetune_kernels::bench::{bench_ops, BenchScale};
use finetune_kernels::Result;

#[test]
fn tiny_bench_times_every_op_both_ways() -> Result<()> {
    let timings = bench_ops(BenchScale::Tiny, 2)?;
    let ops: Vec<&str> = timings.iter().map(|t| t.op.as_str()).collect();
    for name in [
        "layer_norm",
        "softmax_last_dim",
        "log_softmax_last_dim",
        "gelu",
        "gelu_new",
        "cross_entropy",
        "max_pool2d(k3,s2,p1)",
        "dropout(p=0.1)",
    ] {
        assert_eq!(
            ops.iter().filter(|&&o| o == name).count(),
            1,
            "{name} in {ops:?}"
        );
    }
    for t in &timings {
        assert!(!t.shape.is_empty(), "{}: empty shape", t.op);
        // Schema only, no timing claims: seconds are finite and non-negative.
        for s in [t.fused_s, t.composed_s] {
            assert!(s >= 0.0 && s.is_finite(), "{t:?}");
        }
        assert!(!t.baseline.is_empty(), "{}: no baseline named", t.op);
    }
    let json = serde_json::to_value(&timings).expect("serialisable");
    let first = json[0].as_object().expect("an array of objects");
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["composed_s", "fused_s", "op", "shape"]);
    Ok(())
}
