//! Evaluation: a model's mean loss and metrics over a data set, in order, in eval mode — per
//! sample, or per token for token-level models (tokens whose target is [`IGNORE_INDEX`] left
//! out; a single-label token model is scored on the tag sequences by entity, as seqeval does:
//! [`crate::entities`]) — and the one-line account of it that runs print.

use crate::distributed::shard::shard;
use crate::distributed::{Collective, Solo};
use crate::entities::EntityMetrics;
use crate::feature_cache::{self, Feed};
use crate::metrics::{ClassificationMetrics, EvalMetrics, MultiLabelMetrics, RegressionMetrics};
use crate::sample_bar::SampleBar;
use crate::source::BatchSource;
use candle_core::{DType, Tensor, D};
use finetune_core::model::IGNORE_INDEX;
use finetune_core::{Error, Output, Problem, Result, TrainModel};

/// Evaluation of `model` on `data` in batches of `batch_size`, in order, in eval mode; a
/// [`SampleBar`] shows its progress on a terminal.
pub fn evaluate<M: TrainModel + ?Sized>(
    model: &M,
    data: &dyn BatchSource<M::Inputs>,
    batch_size: usize,
) -> Result<EvalMetrics> {
    let bar = SampleBar::new("evaluating", data.len());
    evaluate_feed(model, &Feed::direct(data), batch_size, &|done, _| {
        bar.set(done)
    })
}

/// What a model predicted and what was true, over a data set (or a rank's share of it).
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Collected {
    classes: (Vec<usize>, Vec<usize>),
    values: (Vec<f64>, Vec<f64>),
    multi: (Vec<Vec<bool>>, Vec<Vec<bool>>),
    tags: (Vec<Vec<String>>, Vec<Vec<String>>),
}

/// [`evaluate`] over a feed (cached features or the source); `progress(done, total)` after
/// each batch.
pub(crate) fn evaluate_feed<M: TrainModel + ?Sized>(
    model: &M,
    data: &Feed<'_, M::Inputs>,
    batch_size: usize,
    progress: &dyn Fn(usize, usize),
) -> Result<EvalMetrics> {
    evaluate_feed_on(model, data, batch_size, progress, &Solo)
}

/// [`evaluate_feed`] shared by the ranks of `coll`: each evaluates a contiguous share of the
/// batches ([`crate::distributed::shard`]) and every rank gets the metrics of the whole set,
/// computed from every rank's predictions in order (the loss summed in another order).
/// `progress` counts this rank's share.
pub(crate) fn evaluate_feed_on<M: TrainModel + ?Sized>(
    model: &M,
    data: &Feed<'_, M::Inputs>,
    batch_size: usize,
    progress: &dyn Fn(usize, usize),
    coll: &dyn Collective,
) -> Result<EvalMetrics> {
    let n = data.len();
    let starts: Vec<usize> = (0..n).step_by(batch_size.max(1)).collect();
    let mine = shard(&starts, coll.rank(), coll.world_size());
    let end = |start: usize| (start + batch_size).min(n);
    let share: usize = mine.iter().map(|&s| end(s) - s).sum();
    let problem = model.problem();
    let (mut loss_sum, mut got, mut done) = (0.0, Collected::default(), 0);
    for &start in mine {
        let idx: Vec<usize> = (start..end(start)).collect();
        let batch = data.batch(&idx, 0, false)?;
        let logits = feature_cache::forward(model, &batch.inputs, false)?;
        let loss = model.loss(&logits, &batch.targets, 0.0)?;
        loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()? * idx.len() as f64;
        match (model.output(), &problem) {
            (Output::PerToken, Problem::SingleLabel { labels }) => {
                collect_tags(labels, &logits, &batch.targets, &mut got.tags)?
            }
            (Output::PerToken, _) => {
                let (logits, targets) = labelled_tokens(&logits, &batch.targets)?;
                collect(&problem, &logits, &targets, &mut got)?
            }
            (Output::PerSample, _) => collect(&problem, &logits, &batch.targets, &mut got)?,
        }
        done += idx.len();
        progress(done, share);
    }
    let (loss_sum, got) = gather(coll, loss_sum, got)?;
    Ok(metrics(model, n, loss_sum, got))
}

/// Every rank's loss sum and predictions, joined in rank order (one process: its own).
fn gather(coll: &dyn Collective, loss_sum: f64, got: Collected) -> Result<(f64, Collected)> {
    if coll.world_size() == 1 {
        return Ok((loss_sum, got));
    }
    let bad =
        |e: serde_json::Error| Error::config(format!("evaluation results between ranks: {e}"));
    let mine = serde_json::to_vec(&(loss_sum, got)).map_err(bad)?;
    let (mut total, mut all) = (0.0, Collected::default());
    for bytes in coll.all_gather_bytes(&mine)? {
        let (l, c): (f64, Collected) = serde_json::from_slice(&bytes).map_err(bad)?;
        total += l;
        all.append(c);
    }
    Ok((total, all))
}

impl Collected {
    /// `other`'s samples after this one's.
    fn append(&mut self, other: Collected) {
        fn join<T>(a: &mut (Vec<T>, Vec<T>), b: (Vec<T>, Vec<T>)) {
            a.0.extend(b.0);
            a.1.extend(b.1);
        }
        join(&mut self.classes, other.classes);
        join(&mut self.values, other.values);
        join(&mut self.multi, other.multi);
        join(&mut self.tags, other.tags);
    }
}

/// The metrics of `n` samples from what was collected over them.
fn metrics<M: TrainModel + ?Sized>(
    model: &M,
    n: usize,
    loss_sum: f64,
    got: Collected,
) -> EvalMetrics {
    let problem = model.problem();
    let (truth, pred) = got.classes;
    let tagged = model.output() == Output::PerToken;
    EvalMetrics {
        loss: loss_sum / n.max(1) as f64,
        samples: n,
        classification: match &problem {
            Problem::SingleLabel { labels } if !tagged => {
                Some(ClassificationMetrics::compute(labels, &truth, &pred))
            }
            _ => None,
        },
        regression: match &problem {
            Problem::Regression => Some(RegressionMetrics::compute(&got.values.0, &got.values.1)),
            _ => None,
        },
        multi_label: match &problem {
            Problem::MultiLabel { labels } => Some(MultiLabelMetrics::compute(
                labels,
                &got.multi.0,
                &got.multi.1,
            )),
            _ => None,
        },
        entities: match &problem {
            Problem::SingleLabel { .. } if tagged => {
                Some(EntityMetrics::compute(&got.tags.0, &got.tags.1))
            }
            _ => None,
        },
    }
}

/// One batch of per-token logits `[N, S, L]` and targets `[N, S]` as tag sequences: each
/// row's labelled tokens, in order, true and predicted.
fn collect_tags(
    labels: &[String],
    logits: &Tensor,
    targets: &Tensor,
    tags: &mut (Vec<Vec<String>>, Vec<Vec<String>>),
) -> Result<()> {
    let (n, s, _) = logits.dims3()?;
    if targets.dims() != [n, s] {
        return Err(Error::config(format!(
            "per-token targets must be [{n}, {s}] like the logits, got {:?}",
            targets.dims()
        )));
    }
    let truth: Vec<Vec<i64>> = targets.to_dtype(DType::I64)?.to_vec2()?;
    let pred: Vec<Vec<u32>> = logits.argmax(D::Minus1)?.to_vec2()?;
    let name = |i: usize| -> Result<String> {
        labels
            .get(i)
            .cloned()
            .ok_or_else(|| Error::config(format!("class id {i} is not below {}", labels.len())))
    };
    for (t, p) in truth.iter().zip(&pred) {
        let (mut tr, mut pr) = (Vec::new(), Vec::new());
        for (&ti, &pi) in t.iter().zip(p).filter(|(&ti, _)| ti != IGNORE_INDEX) {
            tr.push(name(ti as usize)?);
            pr.push(name(pi as usize)?);
        }
        tags.0.push(tr);
        tags.1.push(pr);
    }
    Ok(())
}

/// One batch's truths and predictions, as the problem counts them.
fn collect(
    problem: &Problem,
    logits: &Tensor,
    targets: &Tensor,
    got: &mut Collected,
) -> Result<()> {
    let as_usize = |v: Vec<u32>| v.into_iter().map(|x| x as usize);
    match problem {
        Problem::SingleLabel { .. } => {
            got.classes
                .0
                .extend(as_usize(targets.to_dtype(DType::U32)?.to_vec1::<u32>()?));
            got.classes
                .1
                .extend(as_usize(logits.argmax(D::Minus1)?.to_vec1::<u32>()?));
        }
        Problem::Regression => {
            let values = |t: &Tensor| -> Result<Vec<f64>> {
                Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
            };
            got.values.0.extend(values(targets)?);
            got.values.1.extend(values(logits)?);
        }
        Problem::MultiLabel { .. } => {
            // A label is predicted when its logit is positive (sigmoid > 0.5).
            let rows = |t: &Tensor| -> Result<Vec<Vec<bool>>> {
                Ok(t.to_dtype(DType::F64)?
                    .to_vec2::<f64>()?
                    .into_iter()
                    .map(|r| r.into_iter().map(|x| x > 0.0).collect())
                    .collect())
            };
            got.multi
                .0
                .extend(rows(&(targets.to_dtype(DType::F64)? - 0.5)?)?);
            got.multi.1.extend(rows(logits)?);
        }
    }
    Ok(())
}

/// Per-token logits `[N, S, L]` and targets `[N, S]` as rows of the tokens that carry a label.
fn labelled_tokens(logits: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    let (n, s, l) = logits.dims3()?;
    if targets.dims() != [n, s] {
        return Err(Error::config(format!(
            "per-token targets must be [{n}, {s}] like the logits, got {:?}",
            targets.dims()
        )));
    }
    let flat: Vec<i64> = targets.flatten_all()?.to_dtype(DType::I64)?.to_vec1()?;
    let keep: Vec<u32> = (0..flat.len() as u32)
        .filter(|&i| flat[i as usize] != IGNORE_INDEX)
        .collect();
    let kept: Vec<i64> = keep.iter().map(|&i| flat[i as usize]).collect();
    let device = logits.device();
    let keep = Tensor::new(keep.as_slice(), device)?;
    let rows = logits.reshape((n * s, l))?.index_select(&keep, 0)?;
    Ok((rows, Tensor::new(kept.as_slice(), device)?))
}

/// Every metric of `m` as `{prefix}_{name}` fields of `rec` (a `metrics.jsonl` record):
/// `eval_loss`, `eval_accuracy`, … (`eval_ema_loss`, … for the moving average's).
pub(crate) fn flatten_eval(rec: &mut serde_json::Value, m: &EvalMetrics, prefix: &str) {
    if let (Some(obj), Ok(serde_json::Value::Object(fields))) =
        (rec.as_object_mut(), serde_json::to_value(m))
    {
        for (k, v) in fields {
            obj.insert(format!("{prefix}_{k}"), v);
        }
    }
}

/// A one-line account of an evaluation.
pub fn describe(m: &EvalMetrics) -> String {
    let mut s = format!("eval loss {:.4}", m.loss);
    if let Some(c) = &m.classification {
        s += &format!(
            ", accuracy {:.4}, macro F1 {:.4} (precision {:.4}, recall {:.4})",
            c.accuracy, c.f1, c.precision, c.recall
        );
    }
    if let Some(r) = &m.regression {
        s += &format!(
            ", MSE {:.4}, MAE {:.4}, Pearson {:.4}, Spearman {:.4}",
            r.mse, r.mae, r.pearson, r.spearman
        );
    }
    if let Some(e) = &m.entities {
        s += &format!(
            ", entity F1 {:.4} (precision {:.4}, recall {:.4}), token accuracy {:.4}",
            e.f1, e.precision, e.recall, e.accuracy
        );
    }
    if let Some(ml) = &m.multi_label {
        s += &format!(
            ", exact-match accuracy {:.4}, micro F1 {:.4}, macro F1 {:.4}",
            ml.exact_match, ml.micro_f1, ml.macro_f1
        );
    }
    s
}
