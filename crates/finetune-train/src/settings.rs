//! One schema for flags and settings files. A settings struct derives clap's `Args` — its
//! flags, their aliases, help and defaults — and serde, whose keys are the clap ids (the field
//! names). From that one declaration these functions give:
//! - the defaults ([`defaults`]: what the flags default to);
//! - the keys a settings file may use ([`file_keys`]: each field's name, and each of its
//!   flag's aliases with `_` for `-`, so `--learning-rate` is `learning_rate` in a file);
//! - a settings file read into those canonical keys ([`read_file`]: TOML, or JSON for a
//!   `.json` file such as a run's `run_config.json`), unknown and duplicate keys refused;
//! - file and command line merged by where each value came from ([`merge`]): a flag the user
//!   gave overrides the file, a flag's default does not.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use finetune_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The value of every field when no flag is given: the flags' defaults.
///
/// Panics if `A` has a required argument (settings structs have none).
pub fn defaults<A: clap::Args + clap::FromArgMatches>() -> A {
    let cmd = A::augment_args(Command::new("defaults").no_binary_name(true));
    let matches = cmd.get_matches_from(std::iter::empty::<String>());
    A::from_arg_matches(&matches).expect("settings have defaults for every field")
}

/// The keys a settings file may use for the arguments of `cmd`, each mapped to its field: the
/// field's own name and its flag's aliases (visible or not) with `_` for `-`.
pub fn file_keys(cmd: &Command) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        keys.insert(id.to_string(), id.to_string());
        for alias in arg.get_all_aliases().into_iter().flatten() {
            keys.insert(alias.replace('-', "_"), id.to_string());
        }
    }
    keys
}

/// Whether the argument `id` of `cmd` takes a list of values.
fn takes_list(cmd: &Command, id: &str) -> bool {
    cmd.get_arguments().any(|a| {
        a.get_id() == id
            && (matches!(a.get_action(), ArgAction::Append)
                || a.get_num_args().is_some_and(|r| r.max_values() > 1))
    })
}

/// Reads the settings file `path` (TOML; JSON when its name ends in `.json`) for the
/// arguments of `cmd`, into canonical keys (see [`canonical_keys`]).
pub fn read_file(path: &Path, cmd: &Command) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_text(path, &text, cmd)
}

/// [`read_file`] of text already read.
pub fn parse_text(path: &Path, text: &str, cmd: &Command) -> Result<Map<String, Value>> {
    let bad = |msg: String| Error::Record {
        path: path.to_path_buf(),
        msg,
    };
    let value: Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?
    } else {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(toml_error(text, &e)))?;
        serde_json::to_value(table).map_err(|e| bad(e.to_string()))?
    };
    let Value::Object(map) = value else {
        return Err(bad("expected a table of settings".into()));
    };
    canonical_keys(path, map, cmd)
}

/// A TOML parse error on one line: `not valid TOML at line L, column C: message` (the
/// parser's own rendering quotes the source over several lines).
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return format!("not valid TOML: {message}");
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    format!("not valid TOML at line {line}, column {column}: {message}")
}

/// `map` with every key replaced by the field it names (an alias by its field), a single
/// value where a list is expected made a one-element list. An unknown key, or a field set
/// twice (under its name and an alias), is an error naming `path`.
pub fn canonical_keys(
    path: &Path,
    map: Map<String, Value>,
    cmd: &Command,
) -> Result<Map<String, Value>> {
    let keys = file_keys(cmd);
    let mut out = Map::new();
    let mut written_as: BTreeMap<String, String> = BTreeMap::new();
    let bad = |msg: String| Error::Record {
        path: path.to_path_buf(),
        msg,
    };
    for (key, value) in map {
        let Some(id) = keys.get(&key) else {
            return Err(bad(match crate::foreign_keys::hint(&key) {
                Some(h) => format!("\"{key}\" (a transformers setting) is not supported: {h}"),
                None => unknown_key(&key, &keys),
            }));
        };
        if let Some(first) = written_as.insert(id.clone(), key.clone()) {
            return Err(bad(format!(
                "duplicate key: \"{first}\" and \"{key}\" set the same setting"
            )));
        }
        let value = match value {
            Value::String(s) if takes_list(cmd, id) => Value::Array(vec![Value::String(s)]),
            v => v,
        };
        out.insert(id.clone(), value);
    }
    Ok(out)
}

/// "unknown key `x`", with the nearest known key when one is close, and the known keys.
fn unknown_key(key: &str, keys: &BTreeMap<String, String>) -> String {
    let ids: BTreeSet<&str> = keys.values().map(String::as_str).collect();
    let nearest = nearest(key, keys.keys().map(String::as_str));
    let hint = nearest.map_or(String::new(), |k| format!(" (did you mean \"{k}\"?)"));
    format!(
        "unknown key \"{key}\"{hint}; the known keys are {}",
        ids.into_iter().collect::<Vec<_>>().join(", ")
    )
}

/// The known key closest to a misspelt `key` (at most 3 edits away), for a "did you mean".
pub fn nearest<'k>(key: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    known
        .into_iter()
        .map(|k| (edit_distance(key, k), k))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// `S` from a map of canonical keys (missing ones take their defaults). A value of the wrong
/// kind is an error naming its key.
pub fn from_map<S: DeserializeOwned>(path: Option<&Path>, map: Map<String, Value>) -> Result<S> {
    let named = |msg: String| match path {
        Some(p) => Error::Record {
            path: p.to_path_buf(),
            msg,
        },
        None => Error::config(msg),
    };
    serde_json::from_value(Value::Object(map.clone())).map_err(|e| {
        // Name the key: the first one that fails on its own.
        let key = map.iter().find_map(|(k, v)| {
            let one = Map::from_iter([(k.clone(), v.clone())]);
            serde_json::from_value::<S>(Value::Object(one))
                .err()
                .map(|_| k.clone())
        });
        match key {
            Some(k) => named(format!("\"{k}\": {e}")),
            None => named(e.to_string()),
        }
    })
}

/// Settings from a file's canonical keys and the command line: the file's values, then each
/// value the command line gave (`matches`' value source), over the defaults. Returns the
/// settings and the keys given by either (what the user set, as opposed to defaults).
pub fn merge<S: Serialize + DeserializeOwned>(
    file: Map<String, Value>,
    cli: &S,
    matches: &ArgMatches,
) -> Result<(S, BTreeSet<String>)> {
    let Value::Object(cli) = serde_json::to_value(cli).map_err(|e| Error::config(e.to_string()))?
    else {
        return Err(Error::config("settings serialise to a table"));
    };
    let mut given: BTreeSet<String> = file.keys().cloned().collect();
    let mut merged = file;
    for id in matches.ids() {
        let id = id.as_str();
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            if let Some(v) = cli.get(id) {
                merged.insert(id.to_string(), v.clone());
                given.insert(id.to_string());
            }
        }
    }
    Ok((from_map(None, merged)?, given))
}

#[cfg(test)]
mod tests {
    use super::{edit_distance, toml_error};

    #[test]
    fn a_toml_error_is_one_line_with_its_place() {
        let text = "lr = 1\nepochs = = 2\n";
        let e = text.parse::<toml::Table>().unwrap_err();
        let msg = toml_error(text, &e);
        assert!(!msg.contains('\n'), "{msg}");
        assert!(
            msg.starts_with("not valid TOML at line 2, column 10: "),
            "{msg}"
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("learnig_rate", "learning_rate"), 1);
        assert_eq!(edit_distance("lr", "lr"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
