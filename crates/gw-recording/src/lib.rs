//! Recording format.
#![forbid(unsafe_code)]
