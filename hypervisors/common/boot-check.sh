# Running a boot and judging it (sourced by the runners).
#
# What a pgwalk hypervisor must print for check_hypervisor_run (on the
# console it shares with the guest, each on a line of its own; the C one
# says pgwalk-hv-c: where the Rust one says pgwalk-hv:):
#   pgwalk-hv: dirty round N: P pages (K KiB) written in T ms
#                                   when round N has been counted
#   pgwalk-hv: vCPUs that ran the guest: N
#   pgwalk-hv: TABLE CHECK PASSED ...
#                                   at SYSTEM_OFF, before powering off
# and the guest's init (init.sh) prints the PGWALK-* lines.

# timed_boot LOG TIMEOUT: runs qemu_cmd under a timeout, streaming its
# output to stderr and LOG; prints the milliseconds from start to the
# guest's marker line (or to the end). Fails when QEMU did not exit 0.
timed_boot() {
    local log=$1 timeout_s=$2
    local start status
    start=$(date +%s%N)
    : > "$log"
    set +e
    timeout --foreground "$timeout_s" "${qemu_cmd[@]}" < /dev/null 2>&1 | tr -d '\r' | while IFS= read -r line; do
        printf '%s\n' "$line" >&2
        if [[ $line == PGWALK-GUEST-OK* ]]; then
            printf 'PGWALK-TIME-TO-MARKER-MS %s\n' $(( ($(date +%s%N) - start) / 1000000 )) >> "$log"
        fi
        printf '%s\n' "$line" >> "$log"
    done
    status=${PIPESTATUS[0]}
    set -e
    echo "QEMU-EXIT-STATUS $status" >> "$log"
    local ms
    ms=$(sed -n 's/^PGWALK-TIME-TO-MARKER-MS //p' "$log" | head -1)
    echo "${ms:-$(( ($(date +%s%N) - start) / 1000000 ))}"
}

# check_hypervisor_run LOG: the criteria a pgwalk hypervisor boot must
# meet. Prints what failed.
check_hypervisor_run() {
    local log=$1 ok=yes
    fail() { echo "==> FAIL: $*" >&2; ok=no; }
    grep -q '^PGWALK-GUEST-OK' "$log" || fail "the guest's marker line (PGWALK-GUEST-OK) did not appear"
    grep -q 'TABLE CHECK PASSED' "$log" || fail "the final stage-2 table check did not pass"
    local vcpus
    vcpus=$(sed -n 's/.*vCPUs that ran the guest: \([0-9]*\).*/\1/p' "$log" | tail -1)
    [ "${vcpus:-0}" -ge 2 ] || fail "the statistics do not show both vCPUs running the guest (${vcpus:-none})"
    # Rounds counted while the workload ran, with writes of at least 1 MiB.
    local rounds
    rounds=$(awk '/^PGWALK-WORKLOAD-START/ { on = 1 } /^PGWALK-WORKLOAD-END/ { on = 0 }
        on && /dirty round [0-9]+: [0-9]+ pages .* written/ {
            for (i = 1; i <= NF; i++) if ($i == "pages") n = $(i - 1)
            if (n >= 256) c++
        } END { print c + 0 }' "$log")
    [ "$rounds" -ge 3 ] || fail "only $rounds dirty-logging rounds with writes (>= 1 MiB) overlapped the workload, not 3"
    # Bad input: loads from the hypervisor's RAM and from a hole got an
    # external abort (SIGBUS in the guest), not a crash.
    for p in hv hole; do
        grep -q "^PGWALK-PROBE $p: status 135" "$log" ||
            fail "the guest's load from the $p probe address did not end in SIGBUS (an injected abort)"
    done
    local status
    status=$(sed -n 's/^QEMU-EXIT-STATUS //p' "$log" | tail -1)
    [ "$status" = 0 ] || fail "QEMU exited with status ${status:-unknown}"
    [ $ok = yes ]
}

# print_ratio HV_MS DIRECT_MS
print_ratio() {
    local hv=$1 direct=$2
    awk -v h="$hv" -v d="$direct" 'BEGIN {
        printf "==> boot to marker: %.1f s on the pgwalk hypervisor, %.1f s directly at EL1: ratio %.2f\n", h / 1000, d / 1000, h / d
    }' >&2
}
