//! Fuzz target `jsonl`: see `tests/robustness/entry.rs` for what the bytes are.
#![no_main]

#[path = "../../tests/robustness/entry.rs"]
mod entry;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = entry::jsonl(data);
});
