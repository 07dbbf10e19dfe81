//! The checked-in header must be what cbindgen makes of this crate.

use std::path::PathBuf;

fn generate() -> String {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("crates/pgwalk-sys/cbindgen.toml is readable");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen writes UTF-8")
}

#[test]
fn header_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../include/pgwalk.h");
    let fresh = generate();
    if std::env::var_os("PGWALK_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("include/pgwalk.h is writable");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "include/pgwalk.h is stale: regenerate it with \
         `PGWALK_BLESS=1 cargo test -p pgwalk-sys header` and commit the result"
    );
}

#[test]
fn readme_shows_the_tested_example() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md is readable");
    let example =
        std::fs::read_to_string(root.join("ffi-tests/example.c")).expect("example.c is readable");
    assert!(
        readme.contains(&format!("```c\n{example}```")),
        "README.md's \"Using pgwalk from C\" must show ffi-tests/example.c verbatim"
    );
}
