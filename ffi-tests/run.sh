#!/usr/bin/env bash
# Builds libpgwalk.a, checks that include/pgwalk.h compiles freestanding and
# as C++17, then compiles every C test with strict flags under AddressSanitizer
# and UndefinedBehaviorSanitizer and runs it. Any failure fails the script.
# Honours CARGO_TARGET_DIR (default: <repo>/target), CC and CXX.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
CC="${CC:-gcc}"
CXX="${CXX:-g++}"

cargo build -p pgwalk-sys --manifest-path "$root/Cargo.toml"
lib="$target/debug/libpgwalk.a"
out="$target/ffi-tests"
mkdir -p "$out"

strict=(-std=c11 -Wall -Wextra -Werror -pedantic)
sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
# What a Rust static library needs from the system on Linux.
syslibs=(-lpthread -ldl -lm)

echo "ffi-tests: header, freestanding C11"
"$CC" "${strict[@]}" -ffreestanding -nostdinc -isystem "$("$CC" -print-file-name=include)" \
    -I "$root/include" -c "$here/header/freestanding.c" -o "$out/freestanding.o"
echo "ffi-tests: header, C++17"
"$CXX" -std=c++17 -Wall -Wextra -Werror -pedantic -I "$root/include" \
    -c "$here/header/cxx17.cpp" -o "$out/cxx17.o"

failed=()
run() {
    local name="$1"
    shift
    "$CC" "${strict[@]}" "${sanitize[@]}" -I "$root/include" -I "$here/support" \
        "$@" "$lib" "${syslibs[@]}" -o "$out/$name"
    # The broken-host test makes the library panic on purpose; keep its
    # message short.
    if ! RUST_BACKTRACE=0 "$out/$name"; then
        failed+=("$name")
    fi
}

run example "$here/example.c"
for t in "$here"/test_*.c; do
    run "$(basename "$t" .c)" "$t" "$here/support/check.c" "$here/support/host.c"
done

echo "ffi-tests: benchmark smoke run"
if ! bash "$here/bench.sh" --smoke >/dev/null; then
    failed+=(bench_walk)
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "ffi-tests: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "ffi-tests: all passed"
