//! `include/bnf.h` must be exactly what cbindgen generates from the sources now, so the checked-in
//! header can never drift from the library. `BNF_BLESS=1` rewrites it instead of failing.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed to generate bnf.h");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = dir.join("include/bnf.h");
    if std::env::var_os("BNF_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write include/bnf.h");
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "capi/include/bnf.h is stale: regenerate it with `BNF_BLESS=1 cargo test -p bnf-capi --test header` and commit it"
    );
}
