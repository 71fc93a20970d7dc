//! Peak resident memory of this process: `VmHWM` from `/proc/self/status` (Linux; `None`
//! elsewhere).

/// The peak resident set size so far, in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_grows_with_a_touched_allocation() {
        let Some(before) = super::peak_rss_mb() else {
            return; // not Linux
        };
        assert!(before > 0.0);
        let v = vec![1u8; 64 << 20];
        std::hint::black_box(&v);
        let after = super::peak_rss_mb().expect("still readable");
        assert!(after >= before + 60.0, "{before} MiB -> {after} MiB");
    }
}
