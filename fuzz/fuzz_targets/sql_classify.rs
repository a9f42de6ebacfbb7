//! cargo-fuzz target for the SQL classifier: arbitrary bytes, both dialects.
//! Classification must never panic, overflow the stack or hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gw_sql::fuzz_classify(data));
