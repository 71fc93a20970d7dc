//! Helpers shared by the tests: small files written on the fly.
#![allow(dead_code)]

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::parser::parse_message_type;
use std::path::Path;
use std::sync::Arc;

fn props(zstd: bool, meta: Option<String>) -> Arc<WriterProperties> {
    let c = if zstd {
        Compression::ZSTD(ZstdLevel::default())
    } else {
        Compression::SNAPPY
    };
    let kv = meta.map(|m| vec![KeyValue::new("huggingface".to_string(), m)]);
    Arc::new(
        WriterProperties::builder()
            .set_compression(c)
            .set_key_value_metadata(kv)
            .build(),
    )
}

fn byte_col(values: &[Option<Vec<u8>>], present_level: i16) -> (Vec<ByteArray>, Vec<i16>) {
    let vals = values
        .iter()
        .flatten()
        .map(|v| ByteArray::from(v.clone()))
        .collect();
    let defs = values
        .iter()
        .map(|v| {
            if v.is_some() {
                present_level
            } else {
                present_level - 1
            }
        })
        .collect();
    (vals, defs)
}

/// Writes a one-row-group Parquet file of the given schema; `column(i, writer)` fills the i-th
/// leaf column.
fn write_parquet(
    path: &Path,
    schema: &str,
    props: Arc<WriterProperties>,
    mut column: impl FnMut(usize, &mut SerializedColumnWriter<'_>),
) {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut i = 0;
    while let Some(mut col) = rg.next_column().unwrap() {
        column(i, &mut col);
        col.close().unwrap();
        i += 1;
    }
    rg.close().unwrap();
    w.close().unwrap();
}

/// A Parquet file with an optional UTF-8 `text` column and an optional int64 `label` column.
pub fn write_text_parquet(path: &Path, texts: &[Option<&str>], labels: &[Option<i64>], zstd: bool) {
    write_text_parquet_meta(path, texts, labels, zstd, None)
}

/// The same with `huggingface` key-value metadata (as the `datasets` library writes).
pub fn write_text_parquet_meta(
    path: &Path,
    texts: &[Option<&str>],
    labels: &[Option<i64>],
    zstd: bool,
    meta: Option<String>,
) {
    let schema = "message schema { optional binary text (UTF8); optional int64 label; }";
    write_parquet(path, schema, props(zstd, meta), |i, col| {
        if i == 0 {
            let t: Vec<Option<Vec<u8>>> = texts
                .iter()
                .map(|t| t.map(|s| s.as_bytes().to_vec()))
                .collect();
            let (v, d) = byte_col(&t, 1);
            col.typed::<ByteArrayType>()
                .write_batch(&v, Some(&d), None)
                .unwrap();
        } else {
            let v: Vec<i64> = labels.iter().flatten().copied().collect();
            let d: Vec<i16> = labels.iter().map(|l| l.is_some() as i16).collect();
            col.typed::<Int64Type>()
                .write_batch(&v, Some(&d), None)
                .unwrap();
        }
    });
}

/// A Parquet file laid out like a Hub image dataset: `image: struct<bytes, path>` and an int64
/// `label`.
pub fn write_image_parquet(path: &Path, images: &[Option<Vec<u8>>], labels: &[i64]) {
    let schema = "message schema { optional group image { optional binary bytes; optional binary path (UTF8); } optional int64 label; }";
    write_parquet(path, schema, props(false, None), |i, col| match i {
        0 => {
            let (v, d) = byte_col(images, 2);
            col.typed::<ByteArrayType>()
                .write_batch(&v, Some(&d), None)
                .unwrap();
        }
        1 => {
            let d = vec![1i16; images.len()]; // struct present, path null
            col.typed::<ByteArrayType>()
                .write_batch(&[], Some(&d), None)
                .unwrap();
        }
        _ => {
            let d = vec![1i16; labels.len()];
            col.typed::<Int64Type>()
                .write_batch(labels, Some(&d), None)
                .unwrap();
        }
    });
}

/// Asserts that an error message names every one of `parts` (the file, the row or line, what
/// was expected), saying which are missing.
#[track_caller]
pub fn assert_mentions(err: &str, parts: &[&str]) {
    let missing: Vec<&str> = parts.iter().copied().filter(|p| !err.contains(p)).collect();
    assert!(
        missing.is_empty(),
        "the message does not mention {missing:?}: {err}"
    );
}

/// An encoded image of the given format ("png", "jpg", "webp"): a w x h RGB gradient.
pub fn encoded(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

pub fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}
