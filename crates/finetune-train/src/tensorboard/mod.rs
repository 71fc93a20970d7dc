//! TensorBoard event files: every scalar that goes to `metrics.jsonl` also goes, under the
//! tags transformers uses (`train/loss`, `train/learning_rate`, `eval/accuracy`, ...) and the
//! global step, to `events.out.tfevents.<time>.<host>.<pid>.<n>` — a new file per start, as
//! TensorBoard expects of a resumed run — flushed at every record so a live TensorBoard follows
//! the run. The run's settings go in as a text summary (`args`).

pub mod proto;
pub mod record;

use finetune_core::{Error, Result};
use prost::Message;
use proto::{
    Event, PluginData, Summary, SummaryMetadata, TensorProto, TensorShapeProto, Value, What,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// An event file open for appending.
pub struct EventWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl EventWriter {
    /// A new event file in `dir` (created if needed), starting with its version record.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        for n in 0.. {
            let name = format!(
                "events.out.tfevents.{secs:010}.{host}.{}.{n}",
                std::process::id()
            );
            let path = dir.join(name);
            match std::fs::OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    let mut w = Self { path, file };
                    w.write(Event {
                        wall_time: now(),
                        step: 0,
                        what: Some(What::FileVersion("brain.Event:2".into())),
                    })?;
                    return Ok(w);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        unreachable!("some file name is free")
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Scalars at `step`, as one event.
    pub fn scalars(&mut self, step: u64, values: &[(String, f64)]) -> Result<()> {
        let value = values
            .iter()
            .map(|(tag, v)| Value {
                tag: tag.clone(),
                simple_value: Some(*v as f32),
                ..Default::default()
            })
            .collect();
        self.summary(step, Summary { value })
    }

    /// A text summary (shown by TensorBoard's text plugin) at `step`.
    pub fn text(&mut self, step: u64, tag: &str, text: &str) -> Result<()> {
        let value = Value {
            tag: tag.to_string(),
            tensor: Some(TensorProto {
                dtype: proto::DT_STRING,
                tensor_shape: Some(TensorShapeProto {}),
                string_val: vec![text.as_bytes().to_vec()],
            }),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "text".into(),
                }),
            }),
            ..Default::default()
        };
        self.summary(step, Summary { value: vec![value] })
    }

    fn summary(&mut self, step: u64, summary: Summary) -> Result<()> {
        self.write(Event {
            wall_time: now(),
            step: step as i64,
            what: Some(What::Summary(summary)),
        })
    }

    fn write(&mut self, event: Event) -> Result<()> {
        record::write(&mut self.file, &event.encode_to_vec())
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The step and the scalars of a `metrics.jsonl` record under transformers' tags: `eval_x` →
/// `eval/x`, `lr` → `train/learning_rate`, each group's of `learning_rates` →
/// `train/learning_rate/{group}`, any other number `x` → `train/x`. Records without a step,
/// and other values that are not numbers, give nothing.
pub fn tags_of(record: &serde_json::Value) -> Option<(u64, Vec<(String, f64)>)> {
    let step = record.get("step")?.as_u64()?;
    let mut values = Vec::new();
    for (k, v) in record
        .as_object()?
        .iter()
        .filter(|(k, _)| k.as_str() != "step")
    {
        if let (true, Some(groups)) = (k == "learning_rates", v.as_object()) {
            let each = groups.iter().filter_map(|(g, lr)| Some((g, lr.as_f64()?)));
            values.extend(each.map(|(g, lr)| (format!("train/learning_rate/{g}"), lr)));
            continue;
        }
        let tag = match k.strip_prefix("eval_") {
            Some(rest) => format!("eval/{rest}"),
            None if k == "lr" => "train/learning_rate".into(),
            None => format!("train/{k}"),
        };
        values.extend(v.as_f64().map(|x| (tag, x)));
    }
    Some((step, values))
}

/// Every event of an event file, both CRCs of every record checked.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    let io = |e| Error::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let records = record::read_all(&mut file).map_err(io)?;
    records
        .iter()
        .map(|r| {
            Event::decode(&r[..]).map_err(|e| Error::Record {
                path: path.to_path_buf(),
                msg: format!("not an Event: {e}"),
            })
        })
        .collect()
}
