//! `output/loss.png`: train loss (blue), eval loss (red) and the eval metric (green, when it is
//! not the loss) against optimizer steps. The figure carries no text (no font dependency): the
//! numbers are in `metrics.jsonl`.

use finetune_core::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// Draws the curves found in `history` (records with `step` and `loss` / `eval_loss` /
/// `eval_{metric}`) to `path`, through a temporary file.
pub fn plot_history(path: &Path, history: &[serde_json::Value], metric: &str) -> Result<()> {
    let series = |key: &str| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| Some((r["step"].as_f64()?, r.get(key)?.as_f64()?)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    let train = series("loss");
    let eval = series("eval_loss");
    let metric_key = format!("eval_{metric}");
    let extra = if metric == "loss" {
        Vec::new()
    } else {
        series(&metric_key)
    };
    if train.is_empty() && eval.is_empty() {
        return Ok(());
    }
    let all = train.iter().chain(&eval).chain(&extra);
    let (mut x1, mut y0, mut y1) = (1.0f64, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let tmp = path.with_extension("tmp.png");
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(&tmp, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .build_cartesian_2d(0.0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_labels(0)
            .y_labels(0)
            .axis_style(BLACK)
            .draw()?;
        for (data, color) in [(&train, BLUE), (&eval, RED), (&extra, GREEN)] {
            if !data.is_empty() {
                chart.draw_series(LineSeries::new(data.iter().copied(), color.stroke_width(2)))?;
            }
        }
        root.present()?;
        Ok(())
    };
    if let Err(e) = draw() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::config(format!(
            "{}: cannot draw the plot: {e}",
            path.display()
        )));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
