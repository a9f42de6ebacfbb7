//! Masking benchmark (filled in below).
fn main() {}
