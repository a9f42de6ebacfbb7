//! Fuzzes the recording reader, exporter and verifier: arbitrary bytes must
//! never panic or allocate without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gw_recording::fuzz_read(data));
