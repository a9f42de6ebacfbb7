//! gatewayd

fn main() {}
