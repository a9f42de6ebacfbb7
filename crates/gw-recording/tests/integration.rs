//! Integration tests of the recording format, in one test binary.

mod integration {
    mod fuzz;
    mod golden;
    mod roundtrip;
    pub mod support;
    mod tamper;
}
