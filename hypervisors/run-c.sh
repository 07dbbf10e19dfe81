#!/usr/bin/env bash
# Boots Debian's arm64 Linux on the C pgwalk hypervisor (hypervisors/c)
# under QEMU, streaming the console, and checks the run as run-rust.sh
# does: the guest's marker line, both vCPUs ran, at least three
# dirty-logging rounds saw writes while the guest's workload ran, the
# final table check passed, QEMU exited 0. Before the boot, the
# freestanding library's panic hook is tested on the same machine
# (hypervisors/c/panic_test.c, three short QEMU runs), and so is the fault
# path's error path (a build whose fault path passes no memory cache must stop
# the guest with -PGW_ENOMEM printed by name).
#
#   hypervisors/run-c.sh [--baseline] [--timeout SECONDS]
#
# --baseline also boots the same kernel and initramfs directly at EL1 and
# prints both boot-to-marker times and their ratio.
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

echo "==> building the freestanding libpgwalk.a and the C hypervisor" >&2
bash "$here/c/build.sh"
out=$root/target/c-hv

echo "==> the panic hook of the freestanding library (QEMU, a few seconds)" >&2
for mode in exit return recurse; do
    # No guest: only the machine and semihosting.
    log=$out/panic-test-$mode.log
    set +e
    timeout --foreground 60 qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 "${qemu_machine_opts[@]}" \
        -semihosting -kernel "$out/panic-test-$mode.elf" < /dev/null 2>&1 | tr -d '\r' > "$log"
    status=${PIPESTATUS[0]}
    set -e
    sed 's/^/    /' "$log" >&2
    if [ "$status" != 0 ]; then
        echo "==> FAIL: panic-hook test ($mode) exited with status $status" >&2
        exit 1
    fi
done

echo "==> preparing the guest" >&2
bash "$here/common/guest.sh"
guest=$root/target/guest
log=$root/target/guest/c-hv.log

echo "==> the fault path's error path: the fault path without a memory cache (seconds)" >&2
qemu_hypervisor "$out/pgwalk-hv-c-enomem.elf" "$guest"
enomem_log=$root/target/guest/c-hv-enomem.log
timed_boot "$enomem_log" 120 >/dev/null 2>&1 || true
grep -q 'kvm_pgtable_stage2_map returned -PGW_ENOMEM; stopping the guest' "$enomem_log" &&
    grep -q '^QEMU-EXIT-STATUS 1$' "$enomem_log" || {
    echo "==> FAIL: the error-path build did not stop with -PGW_ENOMEM printed by name and status 1 (see $enomem_log)" >&2
    exit 1
}
grep 'PGW_ENOMEM' "$enomem_log" | sed 's/^/    /' >&2

echo "==> booting on the C pgwalk hypervisor (timeout ${timeout_s}s)" >&2
qemu_hypervisor "$out/pgwalk-hv-c.elf" "$guest"
hv_ms=$(timed_boot "$log" "$timeout_s")
check_hypervisor_run "$log" || exit 1
echo "==> PASS: the guest booted to its marker in $((hv_ms / 1000)).$(printf %03d $((hv_ms % 1000))) s on the C pgwalk hypervisor" >&2

if [ $baseline = yes ]; then
    echo "==> booting the same guest directly at EL1 (baseline)" >&2
    direct_log=$root/target/guest/direct.log
    qemu_direct "$guest"
    direct_ms=$(timed_boot "$direct_log" "$timeout_s")
    grep -q '^PGWALK-GUEST-OK' "$direct_log" || { echo "==> FAIL: the direct boot did not reach the marker" >&2; exit 1; }
    print_ratio "$hv_ms" "$direct_ms"
fi
