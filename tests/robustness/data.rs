//! Damaged training data: each run fails with one line naming the file (and the row or record)
//! and what is wrong, and leaves no model behind.

use crate::common::*;
use crate::support::*;
use candle_core::{DType, Device};
use finetune_resnet::{ResNet, ResNetConfig};
use std::path::{Path, PathBuf};

/// A text fixture whose training file is replaced by `body` (named `name`); `finetune train`
/// with `extra` flags must fail naming that file and `needles`.
fn text_fails(tag: &str, name: &str, body: &[u8], extra: &[&str], needles: &[&str]) -> String {
    let f = Fixture::new(tag);
    let train = f.dir.join(name);
    std::fs::write(&train, body).unwrap();
    let mut all = vec![s(&train)];
    all.extend_from_slice(needles);
    let out = f.out();
    train_fails(
        &f.train_args_with(&f.model, &train, &out, extra),
        &out,
        &all,
    )
}

/// Toy rows as CSV lines (no header).
fn rows(n: usize) -> Vec<String> {
    sentiment_rows(n, 3)
        .into_iter()
        .map(|(t, l)| format!("{t},{l}"))
        .collect()
}

fn csv_with(lines: &[String]) -> Vec<u8> {
    let mut body = String::from("text,label\n");
    for l in lines {
        body += l;
        body.push('\n');
    }
    body.into_bytes()
}

#[test]
fn csv_with_a_ragged_row() {
    let mut lines = rows(24);
    lines[6] = "the plot was good,pos,extra field".into();
    text_fails(
        "csv-ragged",
        "train.csv",
        &csv_with(&lines),
        &[],
        &["line 8", "3 fields"],
    );
}

#[test]
fn csv_with_the_wrong_delimiter() {
    let body: String = String::from_utf8(csv_with(&rows(24)))
        .unwrap()
        .replace(',', ";");
    text_fails(
        "csv-delimiter",
        "train.csv",
        body.as_bytes(),
        &[],
        &["no column `text`", "text;label"],
    );
}

#[test]
fn csv_missing_the_label_column() {
    text_fails(
        "csv-missing-column",
        "train.csv",
        &csv_with(&rows(24)),
        &["--label-column", "sentiment"],
        &["no column `sentiment`"],
    );
}

#[test]
fn csv_with_non_utf8_bytes() {
    let mut body = csv_with(&rows(24));
    let at = body.iter().rposition(|&b| b == b',').unwrap() - 2;
    body[at] = 0xff;
    body[at + 1] = 0xfe;
    text_fails("csv-utf8", "train.csv", &body, &[], &["UTF-8"]);
}

#[test]
fn csv_with_an_empty_text() {
    let mut lines = rows(24);
    lines[2] = ",neg".into();
    text_fails(
        "csv-empty-text",
        "train.csv",
        &csv_with(&lines),
        &[],
        &["line 4"],
    );
}

#[test]
fn csv_with_a_label_out_of_range() {
    let lines: Vec<String> = (0..24)
        .map(|i| format!("a good film {i},{}", if i == 9 { 7 } else { i % 2 }))
        .collect();
    text_fails(
        "csv-label-range",
        "train.csv",
        &csv_with(&lines),
        &["--num-labels", "2"],
        &["7"],
    );
}

#[test]
fn eval_data_with_an_unseen_label() {
    let f = Fixture::new("csv-unseen-label");
    let mut lines = rows(12);
    lines[5] = "the film was fine,neutral".into();
    let eval = f.dir.join("eval-bad.csv");
    std::fs::write(&eval, csv_with(&lines)).unwrap();
    let out = f.out();
    train_fails(
        &f.train_args(&out, &["--eval", s(&eval)]),
        &out,
        &[s(&eval), "neutral"],
    );
}

#[test]
fn jsonl_with_a_broken_line() {
    let mut body = String::new();
    for (i, (t, l)) in sentiment_rows(24, 4).into_iter().enumerate() {
        if i == 2 {
            body += "{\"text\": \"a broken line\", \"label\": \n";
        } else {
            body += &serde_json::json!({"text": t, "label": l}).to_string();
            body.push('\n');
        }
    }
    text_fails(
        "jsonl-broken",
        "train.jsonl",
        body.as_bytes(),
        &[],
        &["line 3", "JSON"],
    );
}

/// A valid Parquet file with `text` and `label` string columns.
fn text_parquet(rows: &[(String, &str)]) -> Vec<u8> {
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;
    let schema = "message schema { required binary text (UTF8); required binary label (UTF8); }";
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let mut buf = Vec::new();
    let mut w = SerializedFileWriter::new(
        &mut buf,
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut i = 0;
    while let Some(mut col) = rg.next_column().unwrap() {
        let values: Vec<ByteArray> = rows
            .iter()
            .map(|(t, l)| ByteArray::from(if i == 0 { t.as_str() } else { *l }))
            .collect();
        col.typed::<ByteArrayType>()
            .write_batch(&values, None, None)
            .unwrap();
        col.close().unwrap();
        i += 1;
    }
    rg.close().unwrap();
    w.close().unwrap();
    buf
}

#[test]
fn parquet_truncated() {
    let body = text_parquet(&sentiment_rows(24, 5));
    // The control: the intact file trains.
    let f = Fixture::new("parquet-ok");
    let good = f.dir.join("train.parquet");
    std::fs::write(&good, &body).unwrap();
    finetune_ok(&f.train_args_with(&f.model, &good, &f.out(), &[]));
    for (tag, cut) in [
        ("tail", body.len() - 10),
        ("half", body.len() / 2),
        ("head", 4),
    ] {
        text_fails(
            &format!("parquet-{tag}"),
            "train.parquet",
            &body[..cut],
            &[],
            &["arquet"],
        );
    }
}

// ---- images -------------------------------------------------------------------------------

/// A tiny ResNet-18-layout checkpoint for 16×16 RGB input with `classes` outputs.
fn tiny_resnet(dir: &Path, classes: usize) {
    let v = serde_json::json!({
        "architecture": "resnet18", "num_classes": classes,
        "model_args": {"layers": [1, 1, 1, 1], "channels": [4, 8, 8, 8]}, "stem_channels": 4,
        "pretrained_cfg": {"input_size": [3, 16, 16], "crop_pct": 1.0, "interpolation": "bilinear"}
    });
    let cfg = ResNetConfig::from_timm_json(v.as_object().unwrap()).unwrap();
    ResNet::init(cfg, DType::F32, &Device::Cpu, 7)
        .unwrap()
        .export_as(dir, None)
        .unwrap();
}

/// A 16×16 RGB PNG.
pub fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 16) as u8 ^ seed, (y * 16) as u8, seed.wrapping_mul(37)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

struct ImageFixture {
    f: Fixture,
    model: PathBuf,
    root: PathBuf,
}

/// An ImageFolder with classes `a` and `b`, 4 PNGs each, and a tiny ResNet.
fn image_fixture(tag: &str) -> ImageFixture {
    let f = Fixture::new(tag);
    let model = f.dir.join("resnet");
    tiny_resnet(&model, 2);
    let root = f.dir.join("images");
    for (c, class) in ["a", "b"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..4u8 {
            std::fs::write(
                root.join(class).join(format!("{i}.png")),
                png(i + 10 * c as u8),
            )
            .unwrap();
        }
    }
    ImageFixture { f, model, root }
}

impl ImageFixture {
    fn args(&self, train: &Path, out: &Path) -> Vec<String> {
        [
            "train",
            "--task",
            "image-classification",
            "--model",
            s(&self.model),
            "--train",
            s(train),
            "--output",
            s(out),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--augment",
            "none",
            "--no-progress",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    }
}

#[test]
fn an_image_folder_trains() {
    // The control for the damaged-image cases.
    let i = image_fixture("img-ok");
    let out = i.f.out();
    finetune_ok(&i.args(&i.root, &out));
    assert!(out.join("model.safetensors").is_file());
}

#[test]
fn damaged_images() {
    let full = png(3);
    let cases: [(&str, &str, Vec<u8>); 3] = [
        ("truncated", "b/2.png", full[..full.len() / 2].to_vec()),
        ("empty", "a/1.png", Vec::new()),
        (
            "text",
            "a/notes.jpg",
            b"this is a text file, not a JPEG\n".to_vec(),
        ),
    ];
    for (tag, file, bytes) in cases {
        let i = image_fixture(&format!("img-{tag}"));
        let path = i.root.join(file);
        std::fs::write(&path, bytes).unwrap();
        let out = i.f.out();
        train_fails(&i.args(&i.root, &out), &out, &[s(&path), "decode"]);
    }
}

#[test]
fn an_image_folder_with_an_empty_class() {
    let i = image_fixture("img-empty-class");
    std::fs::create_dir_all(i.root.join("c")).unwrap();
    let out = i.f.out();
    train_fails(
        &i.args(&i.root, &out),
        &out,
        &[s(&i.root), "`c` holds no image"],
    );
}

/// An IDX pair in `dir`: `n` images of `rows`×`cols` declared (`count` in both headers), with
/// `actual` images of data, and the images file's magic number.
fn write_idx(dir: &Path, magic: u32, count: u32, rows: u32, cols: u32, actual: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut im = Vec::new();
    for w in [magic, count, rows, cols] {
        im.extend(w.to_be_bytes());
    }
    let px = (rows as usize * cols as usize).min(1 << 16);
    im.extend((0..actual * px).map(|i| (i * 7 % 251) as u8));
    let images = dir.join("train-images-idx3-ubyte");
    std::fs::write(&images, im).unwrap();
    let mut lb = Vec::new();
    for w in [0x0801u32, count] {
        lb.extend(w.to_be_bytes());
    }
    lb.extend((0..actual).map(|i| (i % 2) as u8));
    std::fs::write(dir.join("train-labels-idx1-ubyte"), lb).unwrap();
    images
}

#[test]
fn idx_files() {
    let i = image_fixture("idx");
    let out = i.f.out();
    // The control: a valid pair trains (gray 16x16 images, converted for the RGB model).
    let ok = write_idx(&i.f.dir.join("idx-ok"), 0x0803, 8, 16, 16, 8);
    finetune_ok(&i.args(ok.parent().unwrap(), &out));
    let cases: [(&str, u32, u32, u32, u32, usize, &str); 4] = [
        ("magic", 0x0804, 8, 16, 16, 8, "magic"),
        ("count", 0x0803, 100, 16, 16, 8, "truncated"),
        (
            "overflow",
            0x0803,
            u32::MAX,
            u32::MAX,
            u32::MAX,
            1,
            "images",
        ),
        ("empty-image", 0x0803, 8, 0, 16, 8, "0x16"),
    ];
    for (tag, magic, count, rows, cols, actual, needle) in cases {
        let images = write_idx(&i.f.dir.join(tag), magic, count, rows, cols, actual);
        let out = i.f.dir.join(format!("out-{tag}"));
        train_fails(
            &i.args(images.parent().unwrap(), &out),
            &out,
            &[s(&images), needle],
        );
    }
}

#[test]
fn cifar_file_of_the_wrong_size() {
    let i = image_fixture("cifar");
    let bin = i.f.dir.join("data_batch_1.bin");
    std::fs::write(&bin, vec![1u8; 3073 * 2 + 100]).unwrap();
    let out = i.f.out();
    train_fails(&i.args(&bin, &out), &out, &[s(&bin), "records"]);
}
