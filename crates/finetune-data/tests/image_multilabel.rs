//! Multi-label image lists: `;`-separated labels in a `path,label` CSV become label sets
//! (shared with text data's [`Target`]), an empty cell an image with none; an unknown label is
//! an error naming file and row; the views (select, relabel) keep each image's set; other
//! formats refuse multi-label.

mod common;

use common::{assert_mentions, encoded, write};
use finetune_core::ProblemType;
use finetune_data::image::{list, open, ImageOpenOptions};
use finetune_data::target::{infer_problem, Target};
use finetune_data::LabelMap;
use image::ImageFormat;

fn multi() -> ImageOpenOptions {
    ImageOpenOptions {
        multi_label: true,
        ..ImageOpenOptions::default()
    }
}

#[test]
fn list_csv_labels_become_sets() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for f in ["a", "b", "c"] {
        write(
            &r.join(format!("img/{f}.png")),
            encoded(4, 4, ImageFormat::Png),
        );
    }
    let csv = r.join("list.csv");
    write(
        &csv,
        "path,label\nimg/a.png,red;circle\nimg/b.png, square ; red ;\nimg/c.png,\n",
    );
    let raw = list::raw_labels(&csv, "path", "label").unwrap();
    assert_eq!(
        infer_problem(raw.iter().map(String::as_str)),
        ProblemType::MultiLabelClassification
    );
    let ds = open(&csv, &multi()).unwrap();
    assert!(ds.is_multi_label());
    assert_eq!(ds.class_names(), ["circle", "red", "square"]);
    let want = [vec![0, 1], vec![1, 2], vec![]];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(ds.target(i), Target::Labels(w.clone()));
    }
    let sub = ds.select(&[2, 0]);
    assert_eq!(
        sub.targets(),
        [Target::Labels(vec![]), Target::Labels(vec![0, 1])]
    );
    // The run's order (a checkpoint's): each image keeps its labels, by name.
    let order = LabelMap::from_names(vec!["square".into(), "red".into(), "circle".into()]).unwrap();
    let re = ds.relabel(&order).unwrap();
    assert_eq!(re.target(0), Target::Labels(vec![1, 2]));
    assert_eq!(re.target(1), Target::Labels(vec![0, 1]));
    // Collated as multi-hot [B, L] f32, as BCE takes them.
    let t = re.targets();
    let refs: Vec<&Target> = t.iter().collect();
    let hot = Target::collate(&refs, 3, &candle_core::Device::Cpu).unwrap();
    assert_eq!(
        hot.to_vec2::<f32>().unwrap(),
        [[0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    );
}

#[test]
fn unknown_label_names_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("eval.csv");
    write(&csv, "path,label\na.png,red\nb.png,red;blue\n");
    let given = LabelMap::from_names(vec!["red".into(), "green".into()]).unwrap();
    let o = ImageOpenOptions {
        labels: Some(given),
        ..multi()
    };
    let err = open(&csv, &o).unwrap_err().to_string();
    assert_mentions(&err, &["eval.csv", "row 2", "`blue`", "training labels"]);
}

#[test]
fn other_formats_refuse_multi_label() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(&r.join("red/a.png"), encoded(4, 4, ImageFormat::Png));
    let err = open(r, &multi()).unwrap_err().to_string();
    assert_mentions(&err, &["multi-label", "CSV list", "single-label"]);
}
