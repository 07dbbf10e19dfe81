#!/usr/bin/env bash
# Installs Debian's linux-source-6.12 (apt) if no 6.12 source tarball is in
# /usr/src, and extracts from it the three kernel files the parity harness
# compiles (pgtable.c and the two headers it includes from asm/) plus the
# top-level Makefile (for the version) into the build directory; also gcc,
# binutils (nm, objcopy) and xz if missing. The kernel source never enters
# the repository.
#
# Idempotent: a stamp naming the tarball, its size and mtime makes a second
# run a no-op. Prints the directory holding the extracted tree.
# Honours CARGO_TARGET_DIR (default: <repo>/target).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/kernel-parity/linux"

find_tarball() {
    local t
    for t in /usr/src/linux-source-6.12*.tar.xz /usr/src/linux-source-6.12*.tar.bz2 \
             /usr/src/linux-source-6.12*.tar.gz /usr/src/linux-source-6.12*.tar; do
        if [ -f "$t" ]; then
            echo "$t"
            return 0
        fi
    done
    return 1
}

need_apt=()
find_tarball >/dev/null || need_apt+=(linux-source-6.12)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
{ command -v nm && command -v objcopy; } >/dev/null 2>&1 || need_apt+=(binutils)
command -v xz >/dev/null 2>&1 || need_apt+=(xz-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        echo "kernel-parity/setup: need Debian packages: ${need_apt[*]} (apt-get install ${need_apt[*]})" >&2
        exit 1
    fi
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "kernel-parity/setup: installing ${need_apt[*]}" >&2
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            "${need_apt[@]}" >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            "${need_apt[@]}" >/dev/null
    fi
fi
if ! tarball="$(find_tarball)"; then
    {
        echo "kernel-parity/setup: linux-source-6.12 installed no tarball under /usr/src" >&2
        exit 1
    }
fi

files=(
    arch/arm64/kvm/hyp/pgtable.c
    arch/arm64/include/asm/kvm_pgtable.h
    arch/arm64/include/asm/stage2_pgtable.h
    Makefile
)
stamp="$out/.stamp"
want="$tarball $(stat -c '%s %Y' "$tarball")"
have_all() {
    local f
    for f in "${files[@]}"; do
        [ -f "$out/$f" ] || return 1
    done
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && have_all; then
    echo "$out"
    exit 0
fi

case "$tarball" in
    *.xz) z=-J ;;
    *.bz2) z=-j ;;
    *.gz) z=-z ;;
    *) z= ;;
esac
rm -rf "$out"
mkdir -p "$out"
patterns=()
for f in "${files[@]}"; do
    patterns+=("*/$f")
done
echo "kernel-parity/setup: extracting ${files[*]} from $(basename "$tarball")" >&2
tar -x $z -f "$tarball" -C "$out" --strip-components=1 --wildcards --no-wildcards-match-slash "${patterns[@]}"
have_all || { echo "kernel-parity/setup: $tarball lacks some of: ${files[*]}" >&2; exit 1; }

version="$(awk -F' = ' '/^VERSION =/{v=$2} /^PATCHLEVEL =/{p=$2} /^SUBLEVEL =/{s=$2} END{print v"."p"."s}' "$out/Makefile")"
case "$version" in
    6.12.*) ;;
    *) echo "kernel-parity/setup: expected Linux 6.12.x, the tarball holds $version" >&2; exit 1 ;;
esac
echo "$version" >"$out/VERSION"
echo "$want" >"$stamp"
echo "$out"
