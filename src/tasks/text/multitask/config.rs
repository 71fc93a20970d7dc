//! The `--task-config` file: `[[task]]` tables, each one task's data, columns, labels,
//! problem type and loss weight. Each key is checked on its own, so a bad file gets one line
//! naming the file, the task and the key. Relative paths are relative to the file's folder.

use anyhow::{anyhow, bail, Result};
use finetune_core::ProblemType;
use std::path::{Path, PathBuf};
use toml::Value;

/// The keys a `[[task]]` table takes.
pub const KEYS: [&str; 11] = [
    "name",
    "train",
    "eval",
    "test",
    "text_column",
    "text_pair_column",
    "label_column",
    "label_columns",
    "problem_type",
    "weight",
    "labels",
];

/// Names a task cannot take: the shared encoder's folder in the export.
const RESERVED: [&str; 1] = ["backbone"];

/// One task of a multi-task run; the keys it leaves out keep the command line's values.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The task's name: its export folder and the prefix of its metrics and head parameters.
    pub name: String,
    /// Training files.
    pub train: Vec<PathBuf>,
    /// Evaluation files.
    pub eval: Vec<PathBuf>,
    /// Test files.
    pub test: Vec<PathBuf>,
    /// The text column.
    pub text_column: Option<String>,
    /// The second text of a pair.
    pub text_pair_column: Option<String>,
    /// The label column.
    pub label_column: Option<String>,
    /// Multi-label data as one 0/1 column per label.
    pub label_columns: Vec<String>,
    /// The problem type (default: told from the labels, as a single-task run does).
    pub problem_type: Option<ProblemType>,
    /// The factor of the task's loss (default 1).
    pub weight: f64,
    /// Class names in id order.
    pub labels: Option<Vec<String>>,
}

/// Reads and checks a task file: at least one task, unique names, known keys, values of the
/// right type, weights at least 0 and existing files.
pub fn read(path: &Path) -> Result<Vec<TaskSpec>> {
    let at = |msg: String| anyhow!("{}: {msg}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("cannot read it: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| at(finetune_train::settings::toml_error(&text, &e)))?;
    if let Some(key) = table.keys().find(|k| *k != "task") {
        return Err(at(format!(
            "unknown key \"{key}\": the file lists tasks as [[task]] tables"
        )));
    }
    let Some(Value::Array(tables)) = table.get("task") else {
        return Err(at(
            "no [[task]] table: list each task as a [[task]] table".into()
        ));
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let mut tasks: Vec<TaskSpec> = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let Value::Table(t) = t else {
            return Err(at(format!("task #{} is not a table", i + 1)));
        };
        let task = parse_task(t, i, base).map_err(|e| at(e.to_string()))?;
        if tasks.iter().any(|o| o.name == task.name) {
            return Err(at(format!("two tasks are named \"{}\"", task.name)));
        }
        tasks.push(task);
    }
    Ok(tasks)
}

/// One `[[task]]` table (the `i`th); errors name the task and the key.
fn parse_task(t: &toml::Table, i: usize, base: &Path) -> Result<TaskSpec> {
    let name = match t.get("name") {
        Some(v) => string(v, "name", &format!("task #{}", i + 1))?,
        None => bail!("task #{} has no \"name\"", i + 1),
    };
    check_name(&name).map_err(|e| anyhow!("task #{}: {e}", i + 1))?;
    let who = format!("task \"{name}\"");
    if let Some(key) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
        let near = finetune_train::settings::nearest(key, KEYS.iter().copied());
        let hint = near.map_or(String::new(), |k| format!(" (did you mean \"{k}\"?)"));
        bail!(
            "{who}: unknown key \"{key}\"{hint}; the known keys are {}",
            KEYS.join(", ")
        );
    }
    let opt_string = |key: &str| t.get(key).map(|v| string(v, key, &who)).transpose();
    let files = |key: &str| -> Result<Vec<PathBuf>> {
        let paths = t.get(key).map(|v| strings(v, key, &who)).transpose()?;
        let paths: Vec<PathBuf> = paths
            .unwrap_or_default()
            .iter()
            .map(|p| base.join(p))
            .collect();
        if let Some(p) = paths.iter().find(|p| !p.exists()) {
            bail!("{who}: {key} file {} does not exist", p.display());
        }
        Ok(paths)
    };
    let train = files("train")?;
    if train.is_empty() {
        bail!("{who}: \"train\" is required (a file, or a list of files)");
    }
    let problem_type = opt_string("problem_type")?
        .map(|p| p.parse::<ProblemType>())
        .transpose()
        .map_err(|e| anyhow!("{who}: problem_type: {e}"))?;
    let weight = match t.get("weight") {
        None => 1.0,
        Some(Value::Float(w)) => *w,
        Some(Value::Integer(w)) => *w as f64,
        Some(_) => bail!("{who}: \"weight\" must be a number"),
    };
    if !weight.is_finite() || weight < 0.0 {
        bail!("{who}: \"weight\" must be a finite number at least 0, got {weight}");
    }
    Ok(TaskSpec {
        train,
        eval: files("eval")?,
        test: files("test")?,
        text_column: opt_string("text_column")?,
        text_pair_column: opt_string("text_pair_column")?,
        label_column: opt_string("label_column")?,
        label_columns: t
            .get("label_columns")
            .map(|v| strings(v, "label_columns", &who))
            .transpose()?
            .unwrap_or_default(),
        problem_type,
        weight,
        labels: t
            .get("labels")
            .map(|v| strings(v, "labels", &who))
            .transpose()?,
        name,
    })
}

/// A task name is a folder name and a parameter prefix: letters, digits, `_` and `-`.
fn check_name(name: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || !name.chars().all(ok) {
        bail!("name \"{name}\" must be letters, digits, '_' or '-'");
    }
    if RESERVED.contains(&name) || name.starts_with("checkpoint-") {
        bail!("name \"{name}\" is taken by the run's own output folders");
    }
    Ok(())
}

fn string(v: &Value, key: &str, who: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => bail!("{who}: \"{key}\" must be a string"),
    }
}

/// A string, or a list of strings.
fn strings(v: &Value, key: &str, who: &str) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|i| string(i, key, who)).collect(),
        _ => bail!("{who}: \"{key}\" must be a string or a list of strings"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        std::fs::write(dir.join("a.csv"), "text,label\nx,1\n").unwrap();
        let p = dir.join("tasks.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A fresh folder per test under the system's temporary folder.
    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ft-tasks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn error(text: &str) -> String {
        let dir = tmp("bad");
        let p = write(&dir, text);
        let e = read(&p).unwrap_err().to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(e.contains("tasks.toml"), "names the file: {e}");
        e
    }

    #[test]
    fn a_good_file_reads_with_its_defaults() {
        let dir = tmp("good");
        let p = write(
            &dir,
            "[[task]]\nname = \"a\"\ntrain = \"a.csv\"\n\n[[task]]\nname = \"b\"\n\
             train = [\"a.csv\"]\nweight = 2\nproblem_type = \"regression\"\n",
        );
        let t = read(&p).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].train, [dir.join("a.csv")]);
        assert_eq!((t[0].weight, t[0].problem_type), (1.0, None));
        assert_eq!(t[1].weight, 2.0);
        assert_eq!(t[1].problem_type, Some(ProblemType::Regression));
    }

    #[test]
    fn each_bad_file_gets_one_line_naming_the_task_and_key() {
        let e = error("[[task]]\ntrain = \"a.csv\"\n");
        assert!(e.contains("task #1 has no \"name\""), "{e}");
        let e = error("[[task]]\nname = \"a\"\ntrain = \"a.csv\"\n[[task]]\nname = \"a\"\ntrain = \"a.csv\"\n");
        assert!(e.contains("two tasks are named \"a\""), "{e}");
        let e = error("[[task]]\nname = \"a\"\ntrain = \"a.csv\"\nlabel_colum = \"y\"\n");
        assert!(e.contains("task \"a\": unknown key \"label_colum\""), "{e}");
        assert!(e.contains("did you mean \"label_column\""), "{e}");
        let e = error("[[task]]\nname = \"a\"\ntrain = \"a.csv\"\nweight = -0.5\n");
        assert!(e.contains("task \"a\": \"weight\" must be"), "{e}");
        let e = error("[[task]]\nname = \"a\"\ntrain = \"missing.csv\"\n");
        assert!(
            e.contains("task \"a\": train file") && e.contains("missing.csv"),
            "{e}"
        );
        let e = error("[[task]]\nname = \"a\"\ntrain = \"a.csv\"\nproblem_type = \"ranking\"\n");
        assert!(
            e.contains("task \"a\": problem_type: unknown problem type"),
            "{e}"
        );
        let e = error("[[task]]\nname = \"backbone\"\ntrain = \"a.csv\"\n");
        assert!(e.contains("is taken"), "{e}");
        let e = error("tasks = 1\n");
        assert!(e.contains("unknown key \"tasks\""), "{e}");
        let e = error("[[task]\n");
        assert!(e.contains("not valid TOML at line 1"), "{e}");
    }
}
