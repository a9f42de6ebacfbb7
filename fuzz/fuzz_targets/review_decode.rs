//! cargo-fuzz target for what `gwctl` reads from a gateway: review ids and
//! reviews in JSON, with every review rule applied to what parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gw_review::fuzz_decode(data));
