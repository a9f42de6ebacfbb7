//! Policy model and engine.
#![forbid(unsafe_code)]
