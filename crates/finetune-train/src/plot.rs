//! `output/loss.png`: the train loss (blue line), the eval loss (red, each evaluation marked)
//! and the eval metric (green, on its own axis at the right, when it is not the loss) against
//! optimizer steps, with axes, ticks, labels, a legend and a title. Text is drawn with a
//! bundled font (a subset of DejaVu Sans, `assets/`), so no system font is needed.

use finetune_core::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The figure's size in pixels.
pub const SIZE: (u32, u32) = (1000, 600);
/// Pixels between the figure's edge and the chart.
pub const MARGIN: u32 = 20;
/// Height of the title band.
pub const TITLE_HEIGHT: u32 = 40;
/// Width of the band left of the plotting area (tick labels and the `loss` label).
pub const LEFT_AXIS: u32 = 80;
/// Height of the band under the plotting area (tick labels and the `step` label).
pub const BOTTOM_AXIS: u32 = 50;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const METRIC_COLOUR: RGBColor = RGBColor(0, 150, 0);

/// Metrics that are shares, drawn within [0, 1].
const SHARES: [&str; 4] = ["accuracy", "f1", "precision", "recall"];

type Points = Vec<(u64, f64)>;

/// Draws the curves found in `history` (records with `step` and `loss` / `eval_loss` /
/// `eval_{metric}`) to `path` under `title`, through a temporary file. Nothing is written when
/// the history has no loss.
pub fn plot_history(
    path: &Path,
    history: &[serde_json::Value],
    metric: &str,
    title: &str,
) -> Result<()> {
    let series = |key: &str| -> Points {
        history
            .iter()
            .filter_map(|r| Some((r["step"].as_u64()?, r.get(key)?.as_f64()?)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    let curves = Curves {
        train: series("loss"),
        eval: series("eval_loss"),
        metric: match metric {
            "loss" => Vec::new(),
            m => series(&format!("eval_{m}")),
        },
        metric_name: metric.to_string(),
    };
    if curves.train.is_empty() && curves.eval.is_empty() {
        return Ok(());
    }
    // A hidden temporary name (`.loss.tmp-PID.png`: the backend wants the extension) that a
    // new run's folder check counts as left-over, not as a result.
    let stem = path
        .file_stem()
        .map_or("plot".into(), |s| s.to_string_lossy());
    let tmp = path.with_file_name(format!(".{stem}.tmp-{}.png", std::process::id()));
    let drawn = register_font().and_then(|()| {
        let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
        curves.draw(&root, title)?;
        root.present()?;
        Ok(())
    });
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::config(format!(
            "{}: cannot draw the plot: {e}",
            path.display()
        )));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The font plotters draws `sans-serif` text with (once per process).
fn register_font() -> DrawResult {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the bundled font does not load".into())
    }
}

/// The series of a run's history.
struct Curves {
    train: Points,
    eval: Points,
    metric: Points,
    metric_name: String,
}

impl Curves {
    /// The chart: loss on the left axis, the metric (if any) on the right one.
    fn draw(&self, root: &DrawingArea<BitMapBackend<'_>, Shift>, title: &str) -> DrawResult {
        root.fill(&WHITE)?;
        let losses: Vec<f64> = self.train.iter().chain(&self.eval).map(|p| p.1).collect();
        let last = self
            .train
            .iter()
            .chain(&self.eval)
            .chain(&self.metric)
            .map(|p| p.0)
            .max()
            .unwrap_or(1);
        let steps = 0..last.max(1) + 1;
        let (l0, l1) = padded_range(&losses);
        let metric_values: Vec<f64> = self.metric.iter().map(|p| p.1).collect();
        let (mut m0, mut m1) = padded_range(&metric_values);
        if SHARES.contains(&self.metric_name.as_str()) {
            (m0, m1) = (m0.max(0.0), m1.min(1.0));
        }
        let has_metric = !self.metric.is_empty();
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 24))
            .margin(MARGIN)
            .x_label_area_size(BOTTOM_AXIS)
            .y_label_area_size(LEFT_AXIS)
            .right_y_label_area_size(if has_metric { LEFT_AXIS } else { 0 })
            .build_cartesian_2d(steps.clone(), l0..l1)?
            .set_secondary_coord(steps, m0..m1);
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if has_metric {
            chart
                .configure_secondary_axes()
                .y_desc(format!("eval {}", self.metric_name))
                .label_style(("sans-serif", 15))
                .axis_desc_style(("sans-serif", 17))
                .draw()?;
        }
        let line = |c: RGBColor| c.stroke_width(2);
        let key = |c: RGBColor| {
            move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3))
        };
        chart
            .draw_series(LineSeries::new(self.train.iter().copied(), line(BLUE)))?
            .label("train loss")
            .legend(key(BLUE));
        if self.train.len() == 1 {
            chart.draw_series(self.train.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
        }
        if !self.eval.is_empty() {
            chart
                .draw_series(LineSeries::new(self.eval.iter().copied(), line(RED)))?
                .label("eval loss")
                .legend(key(RED));
            chart.draw_series(self.eval.iter().map(|&p| Circle::new(p, 5, RED.filled())))?;
        }
        if has_metric {
            chart
                .draw_secondary_series(LineSeries::new(
                    self.metric.iter().copied(),
                    line(METRIC_COLOUR),
                ))?
                .label(format!("eval {}", self.metric_name))
                .legend(key(METRIC_COLOUR));
            chart.draw_secondary_series(
                self.metric
                    .iter()
                    .map(|&p| Circle::new(p, 5, METRIC_COLOUR.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperMiddle)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}

/// The smallest and largest of `values` with 5% of their span (10% of the value, at least
/// 0.05, when they are all equal) added on each side; `(0, 1)` for none.
fn padded_range(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        (lo.abs() * 0.1).max(0.05)
    };
    (lo - pad, hi + pad)
}
