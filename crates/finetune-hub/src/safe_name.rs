//! File names that come from the network (a sharded index's `weight_map`, a dataset listing) are
//! joined onto the snapshot folder; one that is absolute or climbs with `..` would read or write
//! outside it. hf-hub does not check (and neither does hf-hub 1.0), so every such name passes
//! through [`is_safe`] before it is used.

/// Whether `name` is a plain relative path: `/`-separated, no empty, `.` or `..` components,
/// not absolute, no backslashes, drive prefixes or NUL bytes.
pub fn is_safe(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains(['\\', '\0', ':'])
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::is_safe;

    #[test]
    fn refuses_every_escape() {
        for ok in [
            "model.safetensors",
            "data/train-00000-of-00002.parquet",
            "a.b/c",
        ] {
            assert!(is_safe(ok), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "./x",
            "a\\..\\x",
            "C:x",
            "x/..",
            "a\0b",
        ] {
            assert!(!is_safe(bad), "{bad:?}");
        }
    }
}
