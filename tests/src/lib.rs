//! Test support shared by the cross-crate tests: an independent `f64` oracle written literally
//! from the paper (materialise `pi` and `f`, sum `f log pi`), finite differences, and input
//! generators.
#![warn(missing_docs)]

pub mod gen;
pub mod oracle;
pub mod seq_oracle;
