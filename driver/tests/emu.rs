//! The GPU tests on the host emulator of the CUDA kernels (`--features emu`, no GPU needed);
//! the same suite as `gpu.rs`.

mod suite;
mod support;

fn main() {
    suite::main();
}
