//! Entity-level metrics against seqeval 1.2.2: hand-made tag sequences in IOB2, IOB1 and BIOES,
//! entities that start with `I-`, a type change inside a chunk and no predicted entity, with
//! the precision, recall, F1, per-type scores, token accuracy and entities seqeval computed
//! for them (`scripts/make-seqeval-fixture.py` → `tests/fixtures/ner/seqeval.json`).

use candle_finetune::train::entities::{entities, EntityMetrics};
use serde_json::Value;

fn cases() -> Vec<(String, Value)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ner/seqeval.json"
    );
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    rec["cases"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn seqs(v: &Value) -> Vec<Vec<String>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn close(a: f64, b: &Value) -> bool {
    (a - b.as_f64().unwrap()).abs() < 1e-12
}

#[test]
fn entities_are_read_as_seqeval_reads_them() {
    for (name, case) in cases() {
        let want: Vec<(String, usize, usize)> =
            serde_json::from_value(case["truth_entities"].clone()).unwrap();
        assert_eq!(entities(&seqs(&case["truth"])), want, "{name}");
    }
}

#[test]
fn scores_equal_seqeval() {
    assert_eq!(cases().len(), 6);
    for (name, case) in cases() {
        let m = EntityMetrics::compute(&seqs(&case["truth"]), &seqs(&case["pred"]));
        for (got, key) in [
            (m.precision, "precision"),
            (m.recall, "recall"),
            (m.f1, "f1"),
            (m.accuracy, "accuracy"),
        ] {
            assert!(
                close(got, &case[key]),
                "{name}: {key} {got} vs {}",
                case[key]
            );
        }
        let want = case["per_type"].as_object().unwrap();
        let got: Vec<&String> = m.per_type.keys().collect();
        assert_eq!(got, want.keys().collect::<Vec<_>>(), "{name}: types");
        for (ty, s) in &m.per_type {
            let w = &want[ty];
            assert!(close(s.precision, &w["precision"]), "{name} {ty} precision");
            assert!(close(s.recall, &w["recall"]), "{name} {ty} recall");
            assert!(close(s.f1, &w["f1"]), "{name} {ty} f1");
            assert_eq!(
                s.support as u64,
                w["support"].as_u64().unwrap(),
                "{name} {ty}"
            );
        }
    }
}
