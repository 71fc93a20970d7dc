//! `loss.png` as a person reads it: decoded and checked for ink where the axes' tick labels,
//! the title and the legend go, and for a mark at a lone evaluation.

use finetune_train::plot::{plot_history, BOTTOM_AXIS, LEFT_AXIS, MARGIN, SIZE, TITLE_HEIGHT};
use image::RgbImage;
use serde_json::json;

/// Renders `history` and decodes the PNG.
fn render(history: &[serde_json::Value], metric: &str) -> RgbImage {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    plot_history(&path, history, metric, "tiny-bert: text-classification").unwrap();
    if let Some(keep) = std::env::var_os("FINETUNE_KEEP_PLOT") {
        std::fs::copy(&path, keep).unwrap();
    }
    let img = image::open(&path).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), SIZE);
    img
}

/// Pixels in `x0..x1` × `y0..y1` that `pick` accepts.
fn count(
    img: &RgbImage,
    (x0, x1): (u32, u32),
    (y0, y1): (u32, u32),
    pick: impl Fn([u8; 3]) -> bool,
) -> usize {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| pick(img.get_pixel(x, y).0))
        .count()
}

/// Text and axis lines are black; the curves are coloured.
fn dark(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c < 100)
}

fn red(p: [u8; 3]) -> bool {
    p[0] > 200 && p[1] < 80 && p[2] < 80
}

/// A falling train loss over 20 steps and evaluations at 10 and 20.
fn history() -> Vec<serde_json::Value> {
    let mut h: Vec<serde_json::Value> = (1..=20)
        .map(|s| json!({"step": s, "loss": 1.0 / s as f64}))
        .collect();
    h.push(json!({"step": 10, "eval_loss": 0.3, "eval_accuracy": 0.7}));
    h.push(json!({"step": 20, "eval_loss": 0.2, "eval_accuracy": 0.9}));
    h
}

#[test]
fn the_axes_title_and_legend_carry_text() {
    let img = render(&history(), "accuracy");
    let (w, h) = SIZE;
    // Left of the plotting area: the loss ticks' numbers and the `loss` label (the axis line
    // itself is at the band's right edge, left out).
    let left = (MARGIN, MARGIN + LEFT_AXIS - 4);
    let rows = (MARGIN + TITLE_HEIGHT, h - MARGIN - BOTTOM_AXIS);
    assert!(count(&img, left, rows, dark) > 200, "no y-axis text");
    // Under the plotting area: the step ticks' numbers and the `step` label.
    let cols = (MARGIN + LEFT_AXIS, w - MARGIN - LEFT_AXIS);
    let bottom = (h - MARGIN - BOTTOM_AXIS + 4, h - MARGIN);
    assert!(count(&img, cols, bottom, dark) > 200, "no x-axis text");
    // Right of the plotting area: the metric's axis.
    let right = (w - MARGIN - LEFT_AXIS + 4, w - MARGIN);
    assert!(count(&img, right, rows, dark) > 200, "no metric axis text");
    // The title band.
    assert!(
        count(&img, (0, w), (0, MARGIN + TITLE_HEIGHT - 8), dark) > 200,
        "no title"
    );
    // The legend, at the top middle of the plotting area, where a falling loss and a rising
    // metric are not: its border and its three labels are the only dark ink there.
    let middle = (MARGIN + LEFT_AXIS + w - MARGIN - LEFT_AXIS) / 2;
    let corner = (middle - 100, middle + 100);
    let top = (MARGIN + TITLE_HEIGHT + 6, MARGIN + TITLE_HEIGHT + 110);
    assert!(count(&img, corner, top, dark) > 300, "no legend");
}

#[test]
fn a_single_evaluation_is_marked() {
    let mut h: Vec<serde_json::Value> = (1..=10)
        .map(|s| json!({"step": s, "loss": 1.0 - s as f64 / 20.0}))
        .collect();
    h.push(json!({"step": 4, "eval_loss": 0.6}));
    let img = render(&h, "loss");
    let (w, hgt) = SIZE;
    // The left half of the plotting area: the step-4 mark, away from the legend's key.
    let cols = (MARGIN + LEFT_AXIS + 4, w / 2);
    let rows = (MARGIN + TITLE_HEIGHT, hgt - MARGIN - BOTTOM_AXIS);
    let red_pixels = count(&img, cols, rows, red);
    // A filled circle of radius 5: about 80 pixels.
    assert!(
        red_pixels > 50,
        "the lone evaluation is not visible: {red_pixels} red pixels"
    );
}

#[test]
fn no_loss_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    plot_history(&path, &[json!({"step": 1, "skipped": true})], "loss", "t").unwrap();
    assert!(!path.exists());
}
