//! cargo-fuzz target for the sftp and scp stream parsers: arbitrary bytes
//! in both directions, and through the request filter. Nothing may panic,
//! and no buffer may grow without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gw_proto_ssh::fuzz_transfer(data));
