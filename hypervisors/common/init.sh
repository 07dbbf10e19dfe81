#!/bin/sh
# /init of the pgwalk test guest (busybox sh). Brings both CPUs up, cycles
# CPU 1 off and on (PSCI CPU_OFF, CPU_ON: under the pgwalk hypervisors this
# marks the start of the workload and arms dirty logging), writes through
# tmpfs from both CPUs, prints the marker and powers off (PSCI SYSTEM_OFF).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

PASSES=@PASSES@
MIB_PER_PASS=@MIB_PER_PASS@

fail() {
    echo "PGWALK-GUEST-FAIL: $*"
    poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o size=600m tmpfs /tmp || fail "no tmpfs"
echo "PGWALK-GUEST: init running on Linux $(uname -r)"

# Bad input: loads from the hypervisor's RAM and from a hole in the memory
# map. On real hardware (and under the pgwalk hypervisors) both end in a
# synchronous external abort: SIGBUS, status 135.
for p in hv hole; do
    /bin/probe-$p
    echo "PGWALK-PROBE $p: status $?"
done

# One writer per CPU, pinned with a cgroup-v2 cpuset where the kernel has
# one (busybox here has no taskset); /proc/stat shows both CPUs worked.
pin=""
if mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null &&
    echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
    for c in 0 1; do
        mkdir -p /sys/fs/cgroup/w$c && echo $c > /sys/fs/cgroup/w$c/cpuset.cpus
    done
    pin=yes
fi

cpus=/sys/devices/system/cpu
[ "$(cat $cpus/online)" = "0-1" ] || fail "CPUs online: $(cat $cpus/online)"
echo 0 > $cpus/cpu1/online || fail "CPU 1 would not go offline"
[ "$(cat $cpus/online)" = "0" ] || fail "CPUs online after CPU 1 off: $(cat $cpus/online)"
echo 1 > $cpus/cpu1/online || fail "CPU 1 would not come back"
[ "$(cat $cpus/online)" = "0-1" ] || fail "CPUs online after CPU 1 on: $(cat $cpus/online)"
echo "PGWALK-GUEST: both CPUs online, CPU 1 cycled off and on"

busy() { # busy ticks of CPU $1
    awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}
b0=$(busy 0); b1=$(busy 1)
echo "PGWALK-WORKLOAD-START: $PASSES passes of $MIB_PER_PASS MiB per CPU, pinned: ${pin:-no}"
pids=""
for c in 0 1; do
    sh -c "
        [ -n '$pin' ] && echo \$\$ > /sys/fs/cgroup/w$c/cgroup.procs
        for p in \$(seq $PASSES); do
            dd if=/dev/zero of=/tmp/w$c bs=1M count=$MIB_PER_PASS conv=notrunc 2>/dev/null || exit 1
        done" &
    pids="$pids $!"
done
for p in $pids; do
    wait $p || fail "a writer failed"
done
e0=$(busy 0); e1=$(busy 1)
echo "PGWALK-WORKLOAD-END: CPU 0 busy $((e0 - b0)) ticks, CPU 1 busy $((e1 - b1)) ticks"
for c in 0 1; do
    size=$(wc -c < /tmp/w$c)
    [ "$size" -eq $((MIB_PER_PASS * 1048576)) ] || fail "writer $c wrote $size bytes"
done
[ $((e0 - b0)) -gt 0 ] && [ $((e1 - b1)) -gt 0 ] || fail "a CPU did no work"
echo "PGWALK-GUEST-OK: $((2 * PASSES * MIB_PER_PASS)) MiB written through tmpfs from 2 CPUs"
poweroff -f
