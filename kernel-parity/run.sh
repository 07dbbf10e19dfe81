#!/usr/bin/env bash
# The kernel-parity test: installs and extracts Linux 6.12's pgtable.c,
# builds the harness for every kernel page size, checks the harness itself
# (Linux against Linux must agree; deliberately injected differences must
# be caught, on stage-2 and on hyp sequences), then runs seeded operation
# sequences on Linux and on pgwalk's kvm_pgtable_* layer: the 4K, 16K and
# 64K kernels, and the 4K and 16K ones with LPA2; a fifth of every run's
# sequences are on hyp (EL2 stage-1) tables. Exits non-zero on any disagreement not on
# kernel-parity/deviations.txt (or on a failed self-check).
#
#   kernel-parity/run.sh                      # the default run
#   kernel-parity/run.sh --report             # + classified summaries with minimal reproducers
#   PGWALK_PARITY_SEED=0x... kernel-parity/run.sh --seq 17   # one sequence of the 4K run, with its transcript
#
# Arguments go to every main run (see `parity --help` in the README); with
# --seq, to the 4K kernel's binary alone (target/kernel-parity/psN/opt/parity
# runs the others, --caps lpa2 for LPA2).
# Environment: PGWALK_PARITY_SEED (default: random, printed),
# PGWALK_PARITY_SEQUENCES (main runs together, default 3000, shared out as
# below), PGWALK_PARITY_ASAN_SEQUENCES (4K kernel under ASan, default 150),
# PGWALK_PARITY_BUDGET (seconds for the main runs together, default 120),
# PGWALK_PARITY_GRANULES (default "12 14 16"; "12" runs the 4K kernel only).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
granules="${PGWALK_PARITY_GRANULES:-12 14 16}"
seqs="${PGWALK_PARITY_SEQUENCES:-3000}"
asan_seqs="${PGWALK_PARITY_ASAN_SEQUENCES:-150}"
budget="${PGWALK_PARITY_BUDGET:-120}"
start=$SECONDS

step() { printf '\n==> kernel-parity: %s\n' "$*" >&2; }

# The main runs, as "PAGE_SHIFT caps share": their shares of the sequences
# and of the time budget. A 4K sequence costs the most (20 ms or so: 1 GiB
# blocks split to pages), a 16K one a tenth of it and a 64K one under half
# (their largest ranges are two level-2 blocks), so those run more
# sequences for less time.
runs=()
for g in $granules; do
    case "$g" in
        12) runs+=("12 - 450" "12 lpa2 200") ;;
        14) runs+=("14 - 250" "14 lpa2 150") ;;
        16) runs+=("16 - 150") ;;
        *) echo "kernel-parity: PAGE_SHIFT must be 12, 14 or 16, not $g" >&2; exit 2 ;;
    esac
done
total=0
for r in "${runs[@]}"; do
    read -r _ _ share <<<"$r"
    total=$((total + share))
done

step "setup"
bash "$here/setup.sh" >/dev/null
step "build (PAGE_SHIFT $granules)"
bash "$here/build.sh" 12
others=""
for g in $granules; do
    [ "$g" = 12 ] || others="$others $g"
done
if [ -n "$others" ]; then
    # shellcheck disable=SC2086
    PGWALK_PARITY_VARIANTS=opt bash "$here/build.sh" $others
fi

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
"$bin/opt/parity" --self --sequences 250 --details 1 || failed+=("self")
"$bin/asan/parity" --self --sequences 50 --details 1 || failed+=("self (ASan)")
for r in "${runs[@]}"; do
    read -r g caps _ <<<"$r"
    [ "$g" = 12 ] && [ "$caps" = - ] && continue
    capsarg=()
    [ "$caps" = - ] || capsarg=(--caps "$caps")
    "$target/kernel-parity/ps$g/opt/parity" --self "${capsarg[@]}" --sequences 150 --details 1 ||
        failed+=("self PAGE_SHIFT $g ${caps/-/}")
done

# Hyp sequences are a share of every run (--hyp-share, 20% by default);
# here the hyp path alone: Linux against Linux, and each injected
# difference on hyp sequences only.
"$bin/opt/parity" --self --hyp-share 100 --sequences 150 --details 1 || failed+=("self (hyp)")

step "self-check: injected differences must be caught"
for k in leaf ret tlbi pages visit; do
    if ! "$bin/opt/parity" --self --inject "$k" --expect-diff --sequences 100 --details 0 >/dev/null; then
        echo "kernel-parity: injected difference '$k' went unnoticed" >&2
        failed+=("inject $k")
    fi
    if ! "$bin/opt/parity" --self --hyp-share 100 --inject "$k" --expect-diff --sequences 60 \
        --details 0 >/dev/null; then
        echo "kernel-parity: injected difference '$k' went unnoticed in hyp sequences" >&2
        failed+=("inject $k (hyp)")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "kernel-parity: the harness failed its self-checks: ${failed[*]}" >&2
    exit 2
fi

status=0
for r in "${runs[@]}"; do
    read -r g caps share <<<"$r"
    n=$((seqs * share / total))
    b=$(awk -v b="$budget" -v s="$share" -v t="$total" 'BEGIN { printf "%.0f", b * s / t }')
    capsarg=()
    what="PAGE_SHIFT $g"
    if [ "$caps" != - ]; then
        capsarg=(--caps "$caps")
        what="$what, LPA2"
    fi
    step "Linux 6.12 against pgwalk, $what ($n sequences, -O2)"
    "$target/kernel-parity/ps$g/opt/parity" "${devs[@]}" "${capsarg[@]}" --sequences "$n" \
        --budget "$b" "$@" || status=1
done
step "Linux 6.12 against pgwalk, PAGE_SHIFT 12 ($asan_seqs sequences, ASan + UBSan)"
"$bin/asan/parity" "${devs[@]}" --sequences "$asan_seqs" --details 1 || status=1

echo "kernel-parity: $((SECONDS - start)) s" >&2
exit $status
