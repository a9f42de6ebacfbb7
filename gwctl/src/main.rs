//! gwctl

fn main() {}
