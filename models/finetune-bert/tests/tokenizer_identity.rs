//! `BertTokenizer::same_ids_as`, what distillation checks before a teacher reads the student's
//! token ids: a copy of a tokenizer agrees with it; another casing, a vocabulary with two ids
//! swapped or one token more does not.

mod common;

use finetune_bert::BertTokenizer;
use std::path::{Path, PathBuf};

const WORDS: [&str; 12] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "cafe", "naive", "42", "times",
    ",",
];

/// A WordPiece tokenizer folder: `vocab.txt` of `words`, lower-casing or not.
fn folder(root: &Path, name: &str, words: &[&str], lower: bool) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vocab.txt"), words.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        format!(r#"{{"do_lower_case": {lower}, "model_max_length": 32}}"#),
    )
    .unwrap();
    dir
}

fn load(dir: &Path) -> BertTokenizer {
    BertTokenizer::from_dir(dir, 16, 32).unwrap()
}

#[test]
fn only_a_tokenizer_giving_the_same_ids_is_the_same() {
    let root = common::tmpdir("tokenizer-identity");
    let root = root.as_path();
    let base = load(&folder(root, "base", &WORDS, true));
    let copy = load(&folder(root, "copy", &WORDS, true));
    assert!(base.same_ids_as(&copy) && copy.same_ids_as(&base));
    assert!(base.same_ids_as(&base));

    let cased = load(&folder(root, "cased", &WORDS, false));
    assert!(!base.same_ids_as(&cased), "another casing");

    let mut swapped = WORDS.to_vec();
    swapped.swap(5, 6);
    let swapped = load(&folder(root, "swapped", &swapped, true));
    assert!(!base.same_ids_as(&swapped), "two ids swapped");

    let mut more = WORDS.to_vec();
    more.push("extra");
    let more = load(&folder(root, "more", &more, true));
    assert!(!base.same_ids_as(&more), "one token more");
    let _ = std::fs::remove_dir_all(root);
}
