//! The GPU tests on a real device (`--features cuda`); see `suite/mod.rs` and docs/gpu.md.

mod suite;
mod support;

fn main() {
    suite::main();
}
