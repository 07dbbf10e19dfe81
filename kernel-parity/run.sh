#!/usr/bin/env bash
# The kernel-parity test: installs and extracts Linux 6.12's pgtable.c,
# builds the harness, checks the harness itself (Linux against Linux must
# agree; deliberately injected differences must be caught), then runs
# seeded operation sequences on Linux and on pgwalk's kvm_pgtable_* layer.
# Exits non-zero on any disagreement not on kernel-parity/deviations.txt
# (or on a failed self-check).
#
#   kernel-parity/run.sh                      # the default run
#   kernel-parity/run.sh --report             # + classified summary with minimal reproducers
#   PGWALK_PARITY_SEED=0x... kernel-parity/run.sh --seq 17   # one sequence, with its transcript
#
# Arguments go to the main run (see `parity --help` in the README).
# Environment: PGWALK_PARITY_SEED (default: random, printed),
# PGWALK_PARITY_SEQUENCES (main run, default 2500), PGWALK_PARITY_ASAN_SEQUENCES
# (default 200), PGWALK_PARITY_GRANULES (default "12"; "12 14 16" also
# builds the 16K and 64K kernels and checks them against themselves),
# PGWALK_PARITY_BUDGET (seconds for the main run, default 150).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
granules="${PGWALK_PARITY_GRANULES:-12}"
seqs="${PGWALK_PARITY_SEQUENCES:-2500}"
asan_seqs="${PGWALK_PARITY_ASAN_SEQUENCES:-200}"
budget="${PGWALK_PARITY_BUDGET:-150}"
start=$SECONDS

step() { printf '\n==> kernel-parity: %s\n' "$*" >&2; }

step "setup"
bash "$here/setup.sh" >/dev/null
step "build (PAGE_SHIFT $granules)"
# shellcheck disable=SC2086
bash "$here/build.sh" $granules

seed="${PGWALK_PARITY_SEED:-}"
if [ -z "$seed" ]; then
    seed="0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
fi
export PGWALK_PARITY_SEED="$seed"
bin="$target/kernel-parity/ps12"
devs=(--deviations "$here/deviations.txt")

for a in "$@"; do
    if [ "$a" = --seq ]; then
        exec "$bin/opt/parity" "${devs[@]}" "$@"
    fi
done

failed=()
step "self-check: Linux against Linux must agree"
"$bin/opt/parity" --self --sequences 400 --details 1 || failed+=("self")
"$bin/asan/parity" --self --sequences 100 --details 1 || failed+=("self (ASan)")
for g in $granules; do
    [ "$g" = 12 ] && continue
    "$target/kernel-parity/ps$g/opt/parity" --self --sequences 300 --details 1 || failed+=("self PAGE_SHIFT $g")
done

step "self-check: injected differences must be caught"
for k in leaf ret tlbi pages visit; do
    if ! "$bin/opt/parity" --self --inject "$k" --expect-diff --sequences 100 --details 0 >/dev/null; then
        echo "kernel-parity: injected difference '$k' went unnoticed" >&2
        failed+=("inject $k")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "kernel-parity: the harness failed its self-checks: ${failed[*]}" >&2
    exit 2
fi

status=0
step "Linux 6.12 against pgwalk ($seqs sequences, -O2)"
"$bin/opt/parity" "${devs[@]}" --sequences "$seqs" --budget "$budget" "$@" || status=1
step "Linux 6.12 against pgwalk ($asan_seqs sequences, ASan + UBSan)"
"$bin/asan/parity" "${devs[@]}" --sequences "$asan_seqs" --details 1 || status=1

echo "kernel-parity: $((SECONDS - start)) s" >&2
exit $status
