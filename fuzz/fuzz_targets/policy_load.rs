//! Fuzzes the policy loader: arbitrary bytes as a policy file must yield
//! diagnostics or a policy, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gw_policy::fuzz_load(data));
