//! Test support shared by the end-to-end and contract tests.

pub mod contract_diff;
