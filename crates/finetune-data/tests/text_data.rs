//! Text readers (CSV, TSV, JSONL, Parquet) on small files written here, label maps, bad rows,
//! splits and the snapshot split finder.

mod common;

use common::{assert_mentions, write, write_text_parquet, write_text_parquet_meta};
use finetune_data::snapshot::{files_of_split, split_files};
use finetune_data::split::{grouped_split, random_split};
use finetune_data::text::{read_table, read_tables, TextColumns, TextReadOptions};
use finetune_data::{LabelMap, OnBadSample};
use std::collections::{BTreeMap, BTreeSet};

fn opts() -> TextReadOptions {
    TextReadOptions::default()
}

/// The error message of reading `path` with the default options.
fn read_err(path: &std::path::Path) -> String {
    read_table(path, &opts()).unwrap_err().to_string()
}

#[test]
fn csv_with_quoted_multiline_fields_and_string_labels() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train.csv");
    write(
        &p,
        "id,text,label\n1,\"good, very \"\"good\"\"\nfilm\",pos\n2,bad,neg\n3,fine,pos\n",
    );
    let t = read_table(&p, &opts()).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.rows[0].text, "good, very \"good\"\nfilm");
    assert_eq!(t.rows[1].loc.to_string(), "row 2 (line 4)");
    let labels = t.fit_labels().unwrap();
    assert_eq!(labels.names(), ["neg", "pos"]); // sorted
    let ds = t.encode(&labels).unwrap();
    assert_eq!(
        ds.records
            .iter()
            .map(|r| r.target.class().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 0, 1]
    );
    assert!(ds.records.iter().all(|r| r.pair.is_none()));
}

#[test]
fn tsv_with_a_pair_column_and_integer_labels() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pairs.tsv");
    write(
        &p,
        "premise\thypothesis\tlabel\nA man sleeps.\tSomeone rests.\t0\nIt rains.\tIt is dry.\t2\n",
    );
    let o = TextReadOptions {
        columns: TextColumns {
            text: "premise".into(),
            pair: Some("hypothesis".into()),
            label: "label".into(),
            label_columns: Vec::new(),
            group: None,
        },
        ..opts()
    };
    let t = read_table(&p, &o).unwrap();
    let labels = t.fit_labels().unwrap();
    // Integers stay ids: 0..=2 even though 1 never occurs.
    assert_eq!(labels.names(), ["0", "1", "2"]);
    let ds = t.encode(&labels).unwrap();
    assert_eq!(ds.records[1].pair.as_deref(), Some("It is dry."));
    assert_eq!(ds.records[1].target.class(), Some(2));
}

#[test]
fn a_csv_row_with_missing_fields_is_an_error_naming_file_and_row_or_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv");
    write(&p, "text,label\nok,1\nno label here\n   ,0\nfine,0\n");
    let err = read_err(&p);
    assert_mentions(
        &err,
        &[
            "bad.csv",
            "row 2 (line 3)",
            "has 1 fields, the header has 2",
        ],
    );

    let skip = TextReadOptions {
        on_bad: OnBadSample::Skip,
        ..opts()
    };
    let t = read_table(&p, &skip).unwrap();
    assert_eq!(
        t.rows.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(),
        vec!["ok", "fine"]
    );
    assert_eq!(t.skipped.count(), 2);
    let msgs = t.skipped.messages();
    assert_mentions(&msgs[1], &["row 3 (line 4)", "empty `text`"]);
    assert!(t.skipped.summary().starts_with("skipped 2 bad samples"));
}

#[test]
fn a_missing_column_names_the_columns_the_file_has() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.csv");
    write(&p, "sentence,label\na,1\n");
    let err = read_err(&p);
    assert_mentions(&err, &["x.csv", "no column `text`", "sentence, label"]);
}

#[test]
fn unseen_eval_label_is_an_error_naming_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, ev) = (dir.path().join("train.csv"), dir.path().join("eval.csv"));
    write(&tr, "text,label\na,pos\nb,neg\n");
    write(&ev, "text,label\nc,neg\nd,neutral\n");
    let labels = read_table(&tr, &opts()).unwrap().fit_labels().unwrap();
    let err = read_table(&ev, &opts())
        .unwrap()
        .encode(&labels)
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["eval.csv", "row 2", "`neutral`"]);
}

#[test]
fn label2id_from_a_model_config_fixes_the_ids() {
    let map = LabelMap::from_label2id(&BTreeMap::from([
        ("POSITIVE".to_string(), 0),
        ("NEGATIVE".to_string(), 1),
    ]))
    .unwrap();
    assert_eq!(map.id("NEGATIVE"), Some(1));
    // Integer ClassLabel values are accepted as ids below the label count.
    assert_eq!(map.id("0"), Some(0));
    assert_eq!(map.id("2"), None);
    assert_eq!(map.id("neutral"), None);
    assert!(LabelMap::from_label2id(&BTreeMap::from([
        ("a".to_string(), 0),
        ("b".to_string(), 2)
    ]))
    .is_err());
    // Fitted string labels do not take integers as ids.
    let fitted = LabelMap::fit(["b", "a"]).unwrap();
    assert_eq!(fitted.id("1"), None);
}

#[test]
fn a_reordered_map_keeps_each_raw_label_s_class() {
    let classes =
        LabelMap::from_class_label(vec!["neg".into(), "neu".into(), "pos".into()]).unwrap();
    let map = classes
        .reordered(vec!["pos".into(), "neg".into(), "neu".into()])
        .unwrap();
    assert_eq!(map.names(), ["pos", "neg", "neu"]);
    assert_eq!(map.id("neg"), Some(1));
    // Integer ClassLabel values still mean the class they named: 0 is `neg`, 2 is `pos`.
    assert_eq!(map.id("0"), Some(1));
    assert_eq!(map.id("2"), Some(0));
    assert_eq!(map.id("3"), None);
    // Only an order of the same names.
    assert!(classes.reordered(vec!["pos".into(), "neg".into()]).is_err());
    assert!(LabelMap::fit(["1", "0"]).unwrap().are_ids());
    assert!(!classes.are_ids());
}

#[test]
fn jsonl_with_numbers_booleans_blank_lines_and_a_broken_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.jsonl");
    write(&p, "{\"text\": \"x\", \"label\": 1}\n\n{\"text\": \"y\", \"label\": 0.0}\n{\"text\": \"z\", \"label\": 3}\n");
    let t = read_table(&p, &opts()).unwrap();
    assert_eq!(
        t.rows.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(),
        vec!["1", "0", "3"]
    );
    assert_eq!(t.rows[2].loc.to_string(), "row 3 (line 4)");
    write(
        &p,
        "{\"text\": \"x\", \"label\": true}\n{\"text\": \"y\", \"label\": \n",
    );
    let err = read_err(&p);
    assert_mentions(&err, &["d.jsonl", "line 2", "not valid JSON"]);
    write(&p, "{\"text\": \"x\"}\n");
    let err = read_err(&p);
    assert_mentions(&err, &["d.jsonl", "row 1", "missing label"]);
}

#[test]
fn parquet_text_with_integer_labels_and_nulls() {
    let dir = tempfile::tempdir().unwrap();
    for zstd in [false, true] {
        let p = dir.path().join(format!("train-{zstd}.parquet"));
        write_text_parquet(
            &p,
            &[Some("great"), Some("awful"), None, Some("meh")],
            &[Some(1), Some(0), Some(1), None],
            zstd,
        );
        let err = read_err(&p);
        assert_mentions(&err, &[".parquet", "row 3", "empty `text`"]);
        let t = read_table(
            &p,
            &TextReadOptions {
                on_bad: OnBadSample::Skip,
                ..opts()
            },
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.skipped.count(), 2);
        let ds = t.encode(&t.fit_labels().unwrap()).unwrap();
        assert_eq!(ds.records[0].text, "great");
        assert_eq!(
            ds.records
                .iter()
                .map(|r| r.target.class().unwrap())
                .collect::<Vec<_>>(),
            vec![1, 0]
        );
    }
}

#[test]
fn snapshot_split_files_follow_hub_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (f, n) in [
        ("data/train-00000-of-00002.parquet", 3),
        ("data/train-00001-of-00002.parquet", 2),
        ("data/validation-00000-of-00001.parquet", 1),
        ("data/test-00000-of-00001.parquet", 1),
        ("data/unsupervised-00000-of-00001.parquet", 1),
    ] {
        std::fs::create_dir_all(root.join("data")).unwrap();
        let texts: Vec<Option<&str>> = (0..n).map(|_| Some("t")).collect();
        let labels: Vec<Option<i64>> = (0..n).map(|i| Some(i as i64 % 2)).collect();
        write_text_parquet(&root.join(f), &texts, &labels, false);
    }
    write(&root.join("README.md"), "---\n---\n");
    let splits = split_files(root, "parquet").unwrap();
    assert_eq!(
        splits.keys().cloned().collect::<Vec<_>>(),
        vec!["test", "train", "unsupervised", "validation"]
    );
    let train = files_of_split(root, "parquet", "train").unwrap();
    assert_eq!(train.len(), 2);
    assert_eq!(read_tables(&train, &opts()).unwrap().len(), 5);
    assert_eq!(
        files_of_split(root, "parquet", "dev").unwrap(),
        splits["validation"]
    );
    let err = files_of_split(root, "parquet", "extra")
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["no split `extra`", "unsupervised"]);

    // The parquet-export layout: config/split/NNNN.parquet.
    let d2 = tempfile::tempdir().unwrap();
    for f in [
        "default/train/0000.parquet",
        "default/train/0001.parquet",
        "default/test/0000.parquet",
    ] {
        write(&d2.path().join(f), b"");
    }
    let s = split_files(d2.path(), "parquet").unwrap();
    assert_eq!(s["train"].len(), 2);
    assert_eq!(s["test"].len(), 1);
    // A file whose split cannot be told, beside ones that can, is an error.
    write(&d2.path().join("default/other.parquet"), b"");
    let err = split_files(d2.path(), "parquet").unwrap_err().to_string();
    assert_mentions(&err, &["cannot tell the split", "other.parquet"]);
}

#[test]
fn random_split_is_seeded_and_sized() {
    let (tr, va) = random_split(1000, 0.1, 42).unwrap();
    assert_eq!((tr.len(), va.len()), (900, 100));
    let all: BTreeSet<usize> = tr.iter().chain(&va).copied().collect();
    assert_eq!(all.len(), 1000);
    assert_eq!(random_split(1000, 0.1, 42).unwrap().1, va);
    assert_ne!(random_split(1000, 0.1, 43).unwrap().1, va);
    assert!(random_split(10, 1.0, 0).is_err());
    assert!(random_split(10, f64::NAN, 0).is_err());
}

#[test]
fn grouped_split_never_separates_a_group() {
    // 100 groups of 1..=10 rows.
    let groups: Vec<String> = (0..100)
        .flat_map(|g| std::iter::repeat_n(format!("film{g}"), g % 10 + 1))
        .collect();
    let n = groups.len();
    let (tr, va) = grouped_split(&groups, 0.2, 7).unwrap();
    assert_eq!(tr.len() + va.len(), n);
    let tg: BTreeSet<&str> = tr.iter().map(|&i| groups[i].as_str()).collect();
    let vg: BTreeSet<&str> = va.iter().map(|&i| groups[i].as_str()).collect();
    assert!(tg.is_disjoint(&vg));
    let target = (n as f64 * 0.2).round() as usize;
    assert!(
        va.len() >= target && va.len() < target + 10,
        "{} vs {target}",
        va.len()
    );
    assert_eq!(grouped_split(&groups, 0.2, 7).unwrap().1, va);
    assert_ne!(grouped_split(&groups, 0.2, 8).unwrap().1, va);
    assert!(grouped_split(&["a", "a", "a"], 0.5, 0).is_err());
}

#[test]
fn parquet_class_label_names_come_from_the_datasets_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train-00000-of-00001.parquet");
    let meta = r#"{"info": {"features": {"text": {"dtype": "string", "_type": "Value"}, "label": {"names": ["neg", "pos"], "_type": "ClassLabel"}}}}"#;
    write_text_parquet_meta(
        &p,
        &[Some("a"), Some("b")],
        &[Some(1), Some(1)],
        false,
        Some(meta.into()),
    );
    let t = read_table(&p, &opts()).unwrap();
    let labels = t.fit_labels().unwrap();
    // Both names, though only `pos` occurs; integer values are ids.
    assert_eq!(labels.names(), ["neg", "pos"]);
    assert_eq!(
        t.encode(&labels).unwrap().records[0].target.class(),
        Some(1)
    );
}
