//! With the `emu` feature (and not `cuda`), compile the host emulator of the CUDA kernels
//! (kernels/emu/emu.cpp, which includes kernels/cuda/*.cu) into this crate.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(all(feature = "emu", not(feature = "cuda")))]
    {
        for dir in ["../kernels/cuda", "../kernels/emu"] {
            println!("cargo:rerun-if-changed={dir}");
        }
        cc::Build::new()
            .cpp(true)
            .std("c++20")
            .flag("-pthread")
            .opt_level(2)
            .include("../kernels/emu/include")
            .file("../kernels/emu/emu.cpp")
            .compile("bnf_emu");
    }
}
