//! Reading named columns of a local Parquet file row by row (the `parquet` crate's record API,
//! no Arrow: it keeps the dependency light). Shared by the text and image Parquet readers.

use finetune_core::{Error, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::Type;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

fn perr(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Record {
        path: path.to_path_buf(),
        msg: format!("not a readable Parquet file: {msg}"),
    }
}

/// Calls `f(row_number, fields)` for every row (0-based), with `fields[k]` the value of
/// `columns[k]` (`None` for a column the caller marked optional and the file lacks). A required
/// column that is missing is an error listing the columns the file has.
pub fn for_each_row(
    path: &Path,
    columns: &[(&str, bool)],
    mut f: impl FnMut(usize, Vec<Option<Field>>) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| perr(path, e))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let root = schema.root_schema();
    let available: Vec<&str> = root.get_fields().iter().map(|t| t.name()).collect();
    let mut wanted: Vec<Arc<Type>> = Vec::new();
    let mut present = Vec::new();
    for &(name, required) in columns {
        match root.get_fields().iter().find(|t| t.name() == name) {
            Some(t) => {
                if !wanted.iter().any(|w| w.name() == name) {
                    wanted.push(t.clone());
                }
                present.push(true);
            }
            None if required => {
                return Err(Error::Record {
                    path: path.to_path_buf(),
                    msg: format!("no column `{name}` (columns: {})", available.join(", ")),
                })
            }
            None => present.push(false),
        }
    }
    let projection = Type::group_type_builder(root.name())
        .with_fields(wanted)
        .build()
        .map_err(|e| perr(path, e))?;
    let rows = reader
        .get_row_iter(Some(projection))
        .map_err(|e| perr(path, e))?;
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| perr(path, format!("row {i}: {e}")))?;
        let mut by_name: Vec<(String, Field)> = row.into_columns();
        let mut out = Vec::with_capacity(columns.len());
        for (k, &(name, _)) in columns.iter().enumerate() {
            if !present[k] {
                out.push(None);
                continue;
            }
            let pos = by_name.iter().position(|(n, _)| n == name);
            // A column asked for twice gets the value twice.
            out.push(pos.map(|p| {
                if columns[k + 1..].iter().any(|&(n, _)| n == name) {
                    by_name[p].1.clone()
                } else {
                    by_name.swap_remove(p).1
                }
            }));
        }
        f(i, out)?;
    }
    Ok(())
}

/// The class names of a `ClassLabel` column, from the `huggingface` metadata that the `datasets`
/// library writes into its Parquet files (`info.features.<column>.names`), if present.
pub fn class_label_names(path: &Path, column: &str) -> Result<Option<Vec<String>>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| perr(path, e))?;
    let kv = reader.metadata().file_metadata().key_value_metadata();
    let Some(meta) = kv.and_then(|kv| kv.iter().find(|k| k.key == "huggingface")) else {
        return Ok(None);
    };
    let Some(json) = meta.value.as_deref() else {
        return Ok(None);
    };
    let v: serde_json::Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(_) => return Ok(None),
    };
    let features = v
        .pointer("/info/features")
        .unwrap_or(&serde_json::Value::Null);
    let feature = &features[column];
    if feature["_type"] != "ClassLabel" {
        return Ok(None);
    }
    Ok(feature["names"].as_array().map(|a| {
        a.iter()
            .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_string))
            .collect()
    }))
}

/// A scalar field as the text a CSV would hold (`None` for null); groups and lists are errors.
pub fn field_to_string(field: &Field) -> std::result::Result<Option<String>, String> {
    Ok(Some(match field {
        Field::Null => return Ok(None),
        Field::Str(s) => s.clone(),
        Field::Bool(b) => b.to_string(),
        Field::Byte(x) => x.to_string(),
        Field::Short(x) => x.to_string(),
        Field::Int(x) => x.to_string(),
        Field::Long(x) => x.to_string(),
        Field::UByte(x) => x.to_string(),
        Field::UShort(x) => x.to_string(),
        Field::UInt(x) => x.to_string(),
        Field::ULong(x) => x.to_string(),
        Field::Float(x) => x.to_string(),
        Field::Double(x) => x.to_string(),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => s.to_string(),
            Err(_) => return Err("binary value is not UTF-8 text".into()),
        },
        other => return Err(format!("unsupported value type {other:?}")),
    }))
}
