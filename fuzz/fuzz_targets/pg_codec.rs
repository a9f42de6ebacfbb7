//! cargo-fuzz target for the PostgreSQL codec and relay: arbitrary bytes as
//! startup packets, frontend and backend streams. Nothing may panic or hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gw_proto_postgres::fuzz_codec(data));
