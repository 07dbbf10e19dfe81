#!/usr/bin/env bash
# Boots Debian's arm64 Linux on the Rust pgwalk hypervisor under QEMU,
# streaming the console, and checks the run: the guest's marker line, both
# vCPUs ran, at least three dirty-logging rounds saw writes while the
# guest's workload ran, the final table check passed, QEMU exited 0.
#
#   hypervisors/run-rust.sh [--baseline] [--timeout SECONDS]
#
# --baseline also boots the same kernel and initramfs directly at EL1
# (virtualization=off) and prints both boot-to-marker times and their ratio.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
baseline=no
timeout_s=300
while [ $# -gt 0 ]; do
    case $1 in
        --baseline) baseline=yes ;;
        --timeout) timeout_s=$2; shift ;;
        *) echo "usage: $0 [--baseline] [--timeout SECONDS]" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source=common/qemu.sh
. "$here/common/qemu.sh"
# shellcheck source=common/boot-check.sh
. "$here/common/boot-check.sh"

echo "==> building the hypervisor" >&2
(cd "$here/rust" && cargo build --release --locked --quiet)
elf=$root/target/aarch64-unknown-none/release/pgwalk-hv

echo "==> preparing the guest" >&2
bash "$here/common/guest.sh"
guest=$root/target/guest
log=$root/target/guest/rust-hv.log

echo "==> booting on the Rust pgwalk hypervisor (timeout ${timeout_s}s)" >&2
qemu_hypervisor "$elf" "$guest"
hv_ms=$(timed_boot "$log" "$timeout_s")
check_hypervisor_run "$log" || exit 1
echo "==> PASS: the guest booted to its marker in $((hv_ms / 1000)).$(printf %03d $((hv_ms % 1000))) s on the Rust pgwalk hypervisor" >&2

if [ $baseline = yes ]; then
    echo "==> booting the same guest directly at EL1 (baseline)" >&2
    direct_log=$root/target/guest/direct.log
    qemu_direct "$guest"
    direct_ms=$(timed_boot "$direct_log" "$timeout_s")
    grep -q '^PGWALK-GUEST-OK' "$direct_log" || { echo "==> FAIL: the direct boot did not reach the marker" >&2; exit 1; }
    print_ratio "$hv_ms" "$direct_ms"
fi
