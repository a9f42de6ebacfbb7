//! cargo-fuzz target for masking: arbitrary bytes as a value and as a
//! randomly chunked stream. Masking must never panic, and chunking must not
//! change what comes out.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gw_mask::fuzz_mask(data));
