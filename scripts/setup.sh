#!/usr/bin/env bash
# Installs everything the test command needs on a fresh machine: the bare-metal
# Rust targets, QEMU and the aarch64 binutils (conformance test), the aarch64
# cross compiler (the C hypervisor), the C sanitizer runtimes (ffi-tests),
# and nightly Rust with Miri (scripts/miri).
# Idempotent; cheap when all is present.
set -euo pipefail

need_apt=()
command -v qemu-system-aarch64 >/dev/null 2>&1 || need_apt+=(qemu-system-arm)
command -v aarch64-linux-gnu-as >/dev/null 2>&1 || need_apt+=(binutils-aarch64-linux-gnu)
# The C hypervisor (hypervisors/c) is compiled with Debian's cross compiler.
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)

if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        echo "setup: missing Debian packages: ${need_apt[*]}" >&2
        echo "setup: install them (apt-get install ${need_apt[*]}) and run again" >&2
        exit 1
    fi
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "setup: installing ${need_apt[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

installed_targets=$(rustup target list --installed)
for t in aarch64-unknown-none x86_64-unknown-none; do
    grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
done

# Miri (scripts/miri): a nightly toolchain beside the pinned one, its miri
# and rust-src components, and Miri's own build of the standard library.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
nightly_components=$(rustup +nightly component list --installed)
for c in miri rust-src; do
    grep -q "^$c" <<<"$nightly_components" || rustup +nightly component add "$c"
done
cargo +nightly miri setup >/dev/null
