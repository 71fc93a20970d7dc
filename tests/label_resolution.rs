//! The one rule that decides a run's classes (`tasks::labels::resolve`), case by case: the
//! training data's labels decide; a checkpoint keeps its head only for the same classes (any
//! case, its order), an unnamed head only for integer labels; `--num-labels` checks the count.

use anyhow::Result;
use candle_finetune::settings::DataSettings;
use candle_finetune::tasks::labels::{resolve, CheckpointLabels};
use finetune_data::LabelMap;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn ckpt(v: &[&str], named: bool) -> CheckpointLabels {
    CheckpointLabels {
        names: names(v),
        named,
    }
}

fn data(v: &'static [&'static str]) -> impl FnOnce() -> Result<LabelMap> {
    move || Ok(LabelMap::fit(v.iter().copied())?)
}

fn flags(labels: Option<&[&str]>, num_labels: Option<usize>) -> DataSettings {
    DataSettings {
        labels: labels.map(names),
        num_labels,
        ..DataSettings::default()
    }
}

#[test]
fn other_labels_get_a_new_head_and_a_line() {
    let r = resolve(
        data(&["pos", "neg", "pos"]),
        &flags(None, None),
        Some(&ckpt(&["adult", "animals"], true)),
    )
    .unwrap();
    assert!(r.new_head);
    assert_eq!(r.map.names(), ["neg", "pos"]);
    let note = r.note.unwrap();
    assert!(
        note.contains("[adult, animals]") && note.contains("[neg, pos]"),
        "{note}"
    );
}

#[test]
fn the_checkpoints_labels_in_another_case_keep_the_head_and_its_order() {
    let r = resolve(
        data(&["neg", "pos"]),
        &flags(None, None),
        Some(&ckpt(&["POS", "Neg"], true)),
    )
    .unwrap();
    assert!(!r.new_head);
    assert_eq!(r.map.names(), ["pos", "neg"]);
    assert_eq!(r.map.id("neg"), Some(1));
    assert!(r.note.is_none());
}

#[test]
fn integer_labels_keep_their_class_when_reordered() {
    let classes = LabelMap::from_class_label(names(&["neg", "pos"])).unwrap();
    let r = resolve(
        || Ok(classes),
        &flags(None, None),
        Some(&ckpt(&["pos", "neg"], true)),
    )
    .unwrap();
    assert_eq!(r.map.id("0"), Some(1), "raw 0 is `neg`, id 1 in the head");
    assert_eq!(r.map.id("1"), Some(0));
}

#[test]
fn unnamed_heads_are_kept_for_integer_labels_only() {
    let generic = ckpt(&["LABEL_0", "LABEL_1"], false);
    let ids = resolve(data(&["1", "0"]), &flags(None, None), Some(&generic)).unwrap();
    assert!(!ids.new_head && ids.note.is_none());
    let named = resolve(data(&["b", "a"]), &flags(None, None), Some(&generic)).unwrap();
    assert!(named.new_head && named.note.is_none());
    assert_eq!(named.map.names(), ["a", "b"]);
    let three = resolve(data(&["0", "2"]), &flags(None, None), Some(&generic)).unwrap();
    assert!(three.new_head);
}

#[test]
fn num_labels_only_checks_the_count() {
    let r = resolve(data(&["circles", "squares"]), &flags(None, Some(2)), None).unwrap();
    assert_eq!(r.map.names(), ["circles", "squares"]);
    let e = resolve(data(&["neg", "pos"]), &flags(None, Some(3)), None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("--num-labels 3") && msg.contains("2 labels"),
        "{msg}"
    );
    let ids = resolve(data(&["0", "1"]), &flags(None, Some(4)), None).unwrap();
    assert_eq!(ids.map.names(), ["0", "1", "2", "3"]);
    // Integer labels are ids: 7 is no class of two, for encoding to report with its row.
    let two = resolve(data(&["0", "7"]), &flags(None, Some(2)), None).unwrap();
    assert_eq!(two.map.names(), ["0", "1"]);
    assert_eq!(two.map.id("7"), None);
}

#[test]
fn labels_flag_gives_the_order_unless_the_head_is_kept() {
    let never = || -> Result<LabelMap> { panic!("the data's labels are not needed") };
    let r = resolve(never, &flags(Some(&["pos", "neg"]), None), None).unwrap();
    assert_eq!(r.map.names(), ["pos", "neg"]);
    let kept = resolve(
        data(&[]),
        &flags(Some(&["pos", "neg"]), None),
        Some(&ckpt(&["neg", "pos"], true)),
    )
    .unwrap();
    assert!(!kept.new_head);
    assert_eq!(kept.map.names(), ["neg", "pos"]);
    assert!(kept.note.unwrap().contains("[neg, pos]"));
    assert!(resolve(data(&[]), &flags(Some(&["a"]), Some(2)), None).is_err());
}

#[test]
fn placeholder_names_are_no_names() {
    assert!(!CheckpointLabels::from_config(names(&["LABEL_0", "LABEL_1"])).named);
    assert!(CheckpointLabels::from_config(names(&["LABEL_1", "LABEL_0"])).named);
    assert!(CheckpointLabels::from_config(names(&["neg", "pos"])).named);
}
