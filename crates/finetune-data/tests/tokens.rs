//! Token classification files: CoNLL (`-DOCSTART-` skipped, extra columns, the tag last, blank
//! lines between sentences), JSONL and Parquet list columns (integer tags kept as ids), and
//! the bad sentences each reader refuses or skips with file and row.

use finetune_data::tokens::{read_tagged, TokenColumns};
use finetune_data::OnBadSample;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn words(t: &finetune_data::tokens::TaggedTable) -> Vec<(Vec<String>, Vec<String>)> {
    t.sentences
        .iter()
        .map(|s| (s.words.clone(), s.tags.clone()))
        .collect()
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn conll_sentences_with_docstart_and_extra_columns() {
    let path = tmp("a.conll");
    let text = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n\
                Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n";
    std::fs::write(&path, text).unwrap();
    let t = read_tagged(
        std::slice::from_ref(&path),
        &TokenColumns::default(),
        OnBadSample::Error,
    )
    .unwrap();
    assert_eq!(
        words(&t),
        [
            (v(&["EU", "rejects"]), v(&["B-ORG", "O"])),
            (v(&["Peter", "Blackburn"]), v(&["B-PER", "I-PER"]))
        ]
    );
    assert_eq!(t.sentences[1].loc.line, Some(7));
    assert_eq!(t.sentences[1].loc.row, 2);
}

#[test]
fn a_conll_line_with_other_columns_names_file_and_lines() {
    let path = tmp("b.conll");
    std::fs::write(&path, "EU NNP B-ORG\nrejects O\n").unwrap();
    let e = read_tagged(&[path], &TokenColumns::default(), OnBadSample::Error)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("b.conll") && e.contains("line 2: 2 columns, but line 1 has 3"),
        "{e}"
    );
}

#[test]
fn jsonl_lengths_must_match_or_the_row_is_skipped_when_asked() {
    let path = tmp("c.jsonl");
    std::fs::write(
        &path,
        "{\"tokens\": [\"a\", \"b\"], \"ner_tags\": [\"O\", \"B-X\"]}\n\n\
         {\"tokens\": [\"c\"], \"ner_tags\": [\"O\", \"O\"]}\n",
    )
    .unwrap();
    let cols = TokenColumns::default();
    let e = read_tagged(std::slice::from_ref(&path), &cols, OnBadSample::Error)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.jsonl") && e.contains("row 2 (line 3): 1 tokens but 2 tags"),
        "{e}"
    );
    let t = read_tagged(&[path], &cols, OnBadSample::Skip).unwrap();
    assert_eq!(words(&t), [(v(&["a", "b"]), v(&["O", "B-X"]))]);
    assert_eq!(t.skipped.count(), 1);
}

/// A Parquet file of `datasets`' layout: `tokens` list<string>, `ner_tags` list<int64>.
fn write_lists(path: &Path, rows: &[(&[&str], &[i64])]) {
    let schema = "message schema {
        optional group tokens (LIST) { repeated group list { optional binary element (UTF8); } }
        optional group ner_tags (LIST) { repeated group list { optional int64 element; } }
    }";
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let file = std::fs::File::create(path).unwrap();
    let props = Arc::new(WriterProperties::builder().build());
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let levels = |n: usize| -> (Vec<i16>, Vec<i16>) {
        (vec![3; n], (0..n).map(|i| i16::from(i > 0)).collect())
    };
    let (mut defs, mut reps) = (Vec::new(), Vec::new());
    for (words, _) in rows {
        let (d, r) = levels(words.len());
        defs.extend(d);
        reps.extend(r);
    }
    let mut col = rg.next_column().unwrap().unwrap();
    let vals: Vec<ByteArray> = rows
        .iter()
        .flat_map(|(w, _)| w.iter().map(|s| ByteArray::from(*s)))
        .collect();
    col.typed::<ByteArrayType>()
        .write_batch(&vals, Some(&defs), Some(&reps))
        .unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    let tags: Vec<i64> = rows.iter().flat_map(|(_, t)| t.iter().copied()).collect();
    col.typed::<Int64Type>()
        .write_batch(&tags, Some(&defs), Some(&reps))
        .unwrap();
    col.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_list_columns_with_integer_tags() {
    let path = tmp("d.parquet");
    write_lists(
        &path,
        &[(&["John", "lives", "here"], &[1, 0, 0]), (&["Acme"], &[3])],
    );
    let t = read_tagged(&[path], &TokenColumns::default(), OnBadSample::Error).unwrap();
    assert_eq!(
        words(&t),
        [
            (v(&["John", "lives", "here"]), v(&["1", "0", "0"])),
            (v(&["Acme"]), v(&["3"]))
        ]
    );
    assert_eq!(t.sentences[1].loc.row, 2);
}
