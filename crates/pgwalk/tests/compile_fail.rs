//! The compile-fail suite: each program in `tests/ui` is a mistake a
//! hypervisor engineer could make, and must be rejected by the compiler for
//! the reason its checked-in `.stderr` records. `tests/twins.rs` holds the
//! correct version of each, which compiles and runs.
//!
//! Compiler messages change between releases; the toolchain is pinned in
//! `rust-toolchain.toml`. Refresh with
//! `TRYBUILD=overwrite cargo test -p pgwalk --test compile_fail` and review
//! the diff (see README, "What the compiler stops").

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
