//! replay

fn main() {}
