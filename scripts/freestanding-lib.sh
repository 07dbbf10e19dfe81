#!/usr/bin/env bash
# Builds the freestanding libpgwalk.a (pgwalk-sys without its `std` feature,
# for aarch64-unknown-none: no_std, panic = abort, no allocator) and checks
# its symbols with nm:
#   - every function include/pgwalk.h declares is defined in it;
#   - nothing is left undefined: it needs no libc, no std, no allocator
#     (memcpy, memset and friends are its own, weak);
#   - the panic handler is there, and no unwinding machinery is.
# Prints the library's path last. Takes about 15 s from scratch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
lib=$target_dir/aarch64-unknown-none/release/libpgwalk.a

command -v aarch64-linux-gnu-nm >/dev/null || {
    echo "freestanding-lib: aarch64-linux-gnu-nm missing (scripts/setup.sh installs binutils-aarch64-linux-gnu)" >&2
    exit 1
}

# `cargo rustc` keeps only the staticlib: a cdylib makes no sense there.
cargo rustc -p pgwalk-sys --release --locked --quiet --manifest-path "$root/Cargo.toml" \
    --no-default-features --target aarch64-unknown-none --crate-type staticlib

# The BFD target is given: Rust's objects carry LLVM bitcode beside their
# code, which nm would otherwise hand to an LTO plugin that cannot read it.
nm_() { aarch64-linux-gnu-nm --target=elf64-littleaarch64 "$@" "$lib" 2>/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nm_ -g --defined-only | awk 'NF == 3 { print $3 }' | sort -u > "$work/defined"
nm_ -g --defined-only | awk 'NF == 3 && $2 == "T" { print $3 }' | sort -u > "$work/text"
nm_ -u | awk 'NF == 2 { print $2 }' | sort -u > "$work/undefined"

fail=0
# Function declarations in the header: a name followed by "(" at the start
# of a line (after the return type), outside typedefs.
grep -v '^typedef' "$root/include/pgwalk.h" |
    sed -n 's/^[a-z_][a-z0-9_ ]*[ *]\(_*\(kvm\|pgw\)_[a-z0-9_]*\)(.*/\1/p' | sort -u > "$work/declared"
declared=$(wc -l < "$work/declared")
[ "$declared" -ge 30 ] || { echo "freestanding-lib: found only $declared declarations in pgwalk.h" >&2; fail=1; }
missing=$(comm -23 "$work/declared" "$work/text")
if [ -n "$missing" ]; then
    echo "freestanding-lib: declared in pgwalk.h but not defined in libpgwalk.a:" $missing >&2
    fail=1
fi
unresolved=$(comm -23 "$work/undefined" "$work/defined")
if [ -n "$unresolved" ]; then
    echo "freestanding-lib: libpgwalk.a needs symbols it does not define:" $unresolved >&2
    fail=1
fi
grep -q 'rust_begin_unwind$' "$work/defined" || { echo "freestanding-lib: no panic handler (rust_begin_unwind)" >&2; fail=1; }
forbidden=$(cat "$work/defined" "$work/undefined" |
    grep -E '^(_Unwind_|__rust_alloc|__rust_dealloc|__rust_start_panic|rust_eh_personality|__gxx_personality|malloc$|free$|abort$|pthread_)' || true)
if [ -n "$forbidden" ]; then
    echo "freestanding-lib: unwinding, allocator or libc symbols:" $forbidden >&2
    fail=1
fi
members=$(aarch64-linux-gnu-ar t "$lib" | grep -E '^(std|alloc|panic_unwind|unwind)-' || true)
[ -z "$members" ] || { echo "freestanding-lib: std crates inside:" $members >&2; fail=1; }
[ $fail = 0 ] || exit 1
echo "freestanding-lib: $declared header functions defined, nothing unresolved, panic handler present, no std, allocator or unwinder" >&2
echo "$lib"
