#!/usr/bin/env bash
# Prepares the test guest for the pgwalk hypervisors, into target/guest/:
#   Image            Debian's arm64 Linux (debian-installer-12-netboot-arm64)
#   initramfs.cpio.gz  busybox from the same package's initrd, with init.sh
#   guest.dtb        QEMU's own DTB for the machine, with /chosen (bootargs,
#                    initrd) and the memory node shrunk past the hypervisor
#   loader.args      the QEMU -device loader options that place them
# Installs what it needs with apt (idempotent). Addresses come from
# layout.ld, the one place they are written down.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$root/target/guest
di=/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64
passes=${PGWALK_GUEST_PASSES:-4}
mib=${PGWALK_GUEST_MIB:-32}

need=()
[ -f "$di/linux" ] || need+=(debian-installer-12-netboot-arm64)
command -v dtc >/dev/null || need+=(device-tree-compiler)
command -v cpio >/dev/null || need+=(cpio)
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v aarch64-linux-gnu-as >/dev/null || need+=(binutils-aarch64-linux-gnu)
if [ ${#need[@]} -gt 0 ]; then
    echo "guest.sh: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

layout() { # value of a symbol in layout.ld
    sed -n "s/^$1 *= *\(0x[0-9a-fA-F]*\|[0-9]*\);.*/\1/p" "$here/layout.ld"
}
hex() { printf '0x%x' "$1"; }

mkdir -p "$out"
cp "$di/linux" "$out/Image"

# The Image header: text_offset at byte 8, image_size at 16, magic at 56.
magic=$(od -An -tx4 -j56 -N4 "$out/Image" | tr -d ' ')
[ "$magic" = 644d5241 ] || { echo "guest.sh: $di/linux is not an arm64 Image" >&2; exit 1; }
text_offset=$(od -An -tu8 -j8 -N8 "$out/Image" | tr -d ' ')
image_size=$(od -An -tu8 -j16 -N8 "$out/Image" | tr -d ' ')
image=$(( $(layout GUEST_IMAGE) + text_offset ))
dtb=$(( $(layout GUEST_DTB) ))
initrd=$(( $(layout GUEST_INITRD) ))
ram_base=$(( $(layout GUEST_RAM_BASE) ))
ram_end=$(( $(layout GUEST_RAM_END) ))
[ $((image + image_size)) -le $dtb ] || { echo "guest.sh: the Image runs into the DTB" >&2; exit 1; }

# The initramfs: busybox, its two libraries, its applet links, init.sh.
stage=$out/initramfs
rm -rf "$stage" "$out/di"
mkdir -p "$stage" "$out/di"
(cd "$out/di" && zcat "$di/initrd.gz" | cpio -idm --quiet \
    bin/busybox 'lib/ld-linux-aarch64.so.1' 'lib/aarch64-linux-gnu/ld-linux-aarch64.so.1' \
    'lib/aarch64-linux-gnu/libc.so.6' 'bin/*' 'sbin/*' 'usr/bin/*' 'usr/sbin/*')
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/aarch64-linux-gnu,proc,sys,dev,tmp}
cp "$out/di/bin/busybox" "$stage/bin/"
cp "$out/di/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1" "$out/di/lib/aarch64-linux-gnu/libc.so.6" \
    "$stage/lib/aarch64-linux-gnu/"
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$stage/lib/ld-linux-aarch64.so.1"
(cd "$out/di" && find bin sbin usr/bin usr/sbin -lname '*busybox' 2>/dev/null) | while read -r l; do
    ln -sf /bin/busybox "$stage/$l"
done
for a in awk seq wc; do [ -e "$stage/bin/$a" ] || [ -e "$stage/usr/bin/$a" ] || ln -s /bin/busybox "$stage/bin/$a"; done
# Two bad-input probes: the hypervisor's own RAM, and a hole in the map.
for p in hv:$(layout HV_BASE) hole:0x09040000; do
    aarch64-linux-gnu-as --defsym PROBE_PA="${p#*:}" -o "$out/probe.o" "$here/probe.S"
    aarch64-linux-gnu-ld -static -o "$stage/bin/probe-${p%%:*}" "$out/probe.o"
done
sed -e "s/@PASSES@/$passes/" -e "s/@MIB_PER_PASS@/$mib/" "$here/init.sh" > "$stage/init"
chmod 755 "$stage/init"
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$out/initramfs.cpio.gz"
initrd_end=$(( initrd + $(stat -c %s "$out/initramfs.cpio.gz") ))
[ $initrd_end -le $ram_end ] || { echo "guest.sh: the initramfs does not fit" >&2; exit 1; }

# The DTB: QEMU's own for this machine, plus /chosen and the guest's RAM.
machine="virt,virtualization=on,gic-version=3"
qemu-system-aarch64 -M "$machine,dumpdtb=$out/qemu.dtb" -cpu max -smp 2 -m 1G -nographic -nic none >/dev/null 2>&1
dtc -q -I dtb -O dts -o "$out/qemu.dts" "$out/qemu.dtb"
memnode=$(sed -n 's/^\t\(memory@[0-9a-f]*\) {$/\1/p' "$out/qemu.dts")
[ -n "$memnode" ] || { echo "guest.sh: no memory node in QEMU's DTB" >&2; exit 1; }
cells() { printf '0x%x 0x%x' $(( $1 >> 32 )) $(( $1 & 0xffffffff )); }
{
    cat "$out/qemu.dts"
    cat <<DTS
/ {
	/delete-node/ $memnode;
	memory@$(printf '%x' $ram_base) {
		device_type = "memory";
		reg = <$(cells $ram_base) $(cells $((ram_end - ram_base)))>;
	};
	chosen {
		bootargs = "console=ttyAMA0 rdinit=/init panic=-1";
		linux,initrd-start = <$(cells $initrd)>;
		linux,initrd-end = <$(cells $initrd_end)>;
	};
};
DTS
} > "$out/guest.dts"
dtc -q -I dts -O dtb -o "$out/guest.dtb" "$out/guest.dts"

cat > "$out/loader.args" <<ARGS
-device loader,file=$out/Image,addr=$(hex $image),force-raw=on
-device loader,file=$out/initramfs.cpio.gz,addr=$(hex $initrd),force-raw=on
-device loader,file=$out/guest.dtb,addr=$(hex $dtb),force-raw=on
ARGS
echo "guest.sh: Image at $(hex $image), initramfs $(hex $initrd)..$(hex $initrd_end), DTB $(hex $dtb); guest RAM $(hex $ram_base)..$(hex $ram_end)" >&2
