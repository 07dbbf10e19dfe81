# QEMU command lines for the pgwalk hypervisors' guest (sourced by the
# runners). The machine is the same for every boot; only what runs at EL2
# differs.
#   qemu_hypervisor ELF GUEST   the guest on a hypervisor ELF
#   qemu_direct GUEST           the same kernel and initramfs at EL1 directly
# Each sets the array qemu_cmd; GUEST is guest.sh's output directory.

qemu_machine_opts=(-cpu max -smp 2 -m 1G -nographic -nic none -no-reboot)

qemu_hypervisor() {
    local elf=$1 guest=$2
    # shellcheck disable=SC2207 # loader.args holds one option per word
    qemu_cmd=(qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 "${qemu_machine_opts[@]}"
        -semihosting -kernel "$elf" $(cat "$guest/loader.args"))
}

qemu_direct() {
    local guest=$1
    qemu_cmd=(qemu-system-aarch64 -M virt,gic-version=3 "${qemu_machine_opts[@]}"
        -kernel "$guest/Image" -initrd "$guest/initramfs.cpio.gz"
        -append "console=ttyAMA0 rdinit=/init panic=-1")
}
