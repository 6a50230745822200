//! Table-name validation: never panics, and accepts exactly the names matching
//! `^[a-zA-Z][a-zA-Z0-9_-]{0,127}$` (checked here without the validator's own code).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    let bytes = name.as_bytes();
    let expected = (1..=128).contains(&bytes.len())
        && bytes[0].is_ascii_alphabetic()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
    assert_eq!(zombi_shared::validate_table_name(name).is_ok(), expected, "{name:?}");
});
