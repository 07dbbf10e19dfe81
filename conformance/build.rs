//! Builds the EL2 probe ahead of time so the first test does not pay for it.
//!
//! A missing cross toolchain must not break `cargo build` of the whole
//! workspace, so failure here is only a warning; the library retries at run
//! time and reports a proper error from there.

#[allow(dead_code)]
#[path = "src/assemble.rs"]
mod assemble;

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let el2_dir = manifest_dir.join("el2");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/assemble.rs");
    println!("cargo:rerun-if-changed=el2/probe.S");
    println!("cargo:rerun-if-changed=el2/link.ld");
    println!("cargo:rerun-if-changed=el2/hyp_probe.S");
    println!("cargo:rerun-if-changed=el2/hyp_link.ld");
    println!("cargo:rerun-if-env-changed={}", assemble::CROSS_PREFIX_ENV);

    // A probe left over from older sources must not survive a failed rebuild.
    let _ = std::fs::remove_file(out_dir.join(assemble::PROBE_ELF_NAME));
    if let Err(e) = assemble::build_probe(&el2_dir, &out_dir) {
        let first_line = e.to_string();
        let first_line = first_line.lines().next().unwrap_or_default();
        println!("cargo:warning=EL2 probe not built now (will retry at run time): {first_line}");
    }
    let _ = std::fs::remove_file(out_dir.join(assemble::HYP_PROBE_ELF_NAME));
    if let Err(e) = assemble::build_hyp_probe(&el2_dir, &out_dir) {
        let first_line = e.to_string();
        let first_line = first_line.lines().next().unwrap_or_default();
        println!(
            "cargo:warning=EL2 stage-1 probe not built now (will retry at run time): {first_line}"
        );
    }
}
