#!/usr/bin/env bash
# Builds and runs ffi-tests/bench_walk.c against the release libpgwalk.a:
# -O2, no sanitizers. Prints `c_callback_walk_ns_per_page <ns>` and
# `c_typed_walk_ns_per_page <ns>`, each on a line of its own.
#
#   ffi-tests/bench.sh           map 1 GiB of 4 KiB pages, time 21 walks each
#   ffi-tests/bench.sh --smoke   map 8 MiB, walk once (a quick check)
#
# Honours CARGO_TARGET_DIR (default: <repo>/target) and CC.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
CC="${CC:-gcc}"

cargo build --release -p pgwalk-sys --manifest-path "$root/Cargo.toml" >&2
mkdir -p "$target/ffi-bench"
"$CC" -std=c11 -O2 -Wall -Wextra -Werror -I "$root/include" -I "$here/support" \
    "$here/bench_walk.c" "$here/support/host.c" "$here/support/check.c" \
    "$target/release/libpgwalk.a" -lpthread -ldl -lm -o "$target/ffi-bench/bench_walk"
exec "$target/ffi-bench/bench_walk" "$@"
