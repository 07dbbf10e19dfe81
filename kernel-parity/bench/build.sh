#!/usr/bin/env bash
# Builds the Linux-vs-pgwalk benchmark (-O2, no sanitizers, the release
# libpgwalk.a): Linux 6.12's pgtable.c renamed linux_* by
# kernel-parity/build.sh, ops.c compiled once against the kernel's headers
# and once against include/pgwalk.h, the shared host and the driver.
#
# Outputs, under $CARGO_TARGET_DIR/linux-bench (default <repo>/target):
#   linux-bench                the C benchmark (see main.c for its options)
#   libpgwalk_linux_peer.a     the kernel's side alone (pgtable.c, the
#                              shims, ops.c and host.c), for the Rust
#                              benchmark to link beside pgwalk
# Prints the output directory. A stamp of every input makes a second run
# with nothing changed a no-op. Honours CC.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kp="$(cd "$here/.." && pwd)"
root="$(cd "$kp/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
CC="${CC:-gcc}"
out="$target/linux-bench"
mkdir -p "$out"

cargo build --release -q -p pgwalk-sys --manifest-path "$root/Cargo.toml" >&2
lib="$target/release/libpgwalk.a"
linux="$(bash "$kp/setup.sh")"

want="$( { echo "$CC"; cat "$here"/*.c "$here"/*.h "$here/build.sh" "$kp/build.sh" "$kp"/shim/*.[ch] \
    "$kp"/shim/linux/*.h "$root/include/pgwalk.h" "$linux/arch/arm64/kvm/hyp/pgtable.c"; \
    stat -c '%s %Y' "$lib"; } | sha256sum | cut -d' ' -f1)"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$want" ] && [ -x "$out/linux-bench" ]; then
    echo "$out"
    exit 0
fi
echo "linux-bench: building" >&2

cflags=(-O2 -g)
kinc="$(bash "$kp/build.sh" linux-obj 12 "$out" "${cflags[@]}")"
# shellcheck disable=SC2206
kinc_a=($kinc)
kernel_cflags=(-std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -fno-strict-aliasing)
strict=(-std=gnu11 -Wall -Wextra -Werror)

"$CC" "${kernel_cflags[@]}" "${cflags[@]}" "${kinc_a[@]}" -I "$here" -DBENCH_SIDE_LINUX \
    -c "$here/ops.c" -o "$out/ops_linux.o"
"$CC" "${strict[@]}" "${cflags[@]}" -I "$here" -I "$kp/shim" -I "$root/include" -DBENCH_SIDE_PGWALK \
    -c "$here/ops.c" -o "$out/ops_pgwalk.o"
"$CC" "${strict[@]}" "${cflags[@]}" -I "$here" -I "$kp/shim" -c "$here/host.c" -o "$out/host.o"
"$CC" "${strict[@]}" "${cflags[@]}" -I "$here" -c "$here/main.c" -o "$out/main.o"

rm -f "$out/libpgwalk_linux_peer.a"
ar rcs "$out/libpgwalk_linux_peer.a" "$out/linux_pgtable.o" "$out/kp_shim.o" "$out/ops_linux.o" "$out/host.o"
"$CC" "${cflags[@]}" "$out/main.o" "$out/ops_pgwalk.o" "$out/libpgwalk_linux_peer.a" "$lib" \
    -lpthread -ldl -lm -o "$out/linux-bench"
echo "$want" >"$out/.stamp"
echo "$out"
