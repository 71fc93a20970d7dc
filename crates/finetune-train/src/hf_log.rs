//! The log lines transformers' `Trainer` prints when it has no progress bar to draw on: a
//! Python dict per logging step (`{'loss': 0.6931, 'learning_rate': 5e-05, 'epoch': 0.12}`),
//! per evaluation (`{'eval_loss': …, 'eval_accuracy': …, 'epoch': …}`) and at the end
//! (`{'train_runtime': …, 'train_loss': …, 'epoch': …}`), numbers written as Python's `repr`.

/// `pairs` as a Python dict literal of floats, in order: `{'loss': 0.6931, 'epoch': 1.0}`.
pub fn python_dict(pairs: &[(&str, f64)]) -> String {
    let fields: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("'{k}': {}", python_float(*v)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// `x` as Python's `repr(float)`: the shortest digits that read back as `x`, positional for
/// exponents -4 to 15 (`0.0001`, `12.0`), scientific otherwise (`5e-05`, `1e+16`); `nan`,
/// `inf`, `-inf`.
pub fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `5e-5`, `1.2345e3`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if x == 0.0 || (-4..16).contains(&exp) {
        let plain = format!("{x}");
        return if plain.contains('.') {
            plain
        } else {
            plain + ".0"
        };
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// `x` rounded to `digits` decimals, as Python's `round(x, digits)` for the values a log holds.
pub fn round_to(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_as_python_writes_them() {
        for (x, want) in [
            (5e-5, "5e-05"),
            (2.5e-5, "2.5e-05"),
            (0.0001, "0.0001"),
            (0.6812, "0.6812"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-3.0, "-3.0"),
            (12345.5, "12345.5"),
            (1e16, "1e+16"),
            (1.5e-10, "1.5e-10"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(python_float(x), want, "{x}");
        }
    }

    #[test]
    fn a_dict_is_python_literal() {
        let line = python_dict(&[
            ("loss", round_to(0.681_234, 4)),
            ("learning_rate", 5e-5),
            ("epoch", round_to(0.123456, 2)),
        ]);
        assert_eq!(
            line,
            "{'loss': 0.6812, 'learning_rate': 5e-05, 'epoch': 0.12}"
        );
    }
}
