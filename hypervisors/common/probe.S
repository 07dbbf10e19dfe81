// A static aarch64 Linux program for the test guest: maps one page of
// physical memory at PROBE_PA (given with --defsym) through /dev/mem and
// loads from it. Where nothing is mapped at stage 2 (the hypervisor's own
// RAM, a hole in the memory map) the hypervisor injects a synchronous
// external abort, which the guest kernel turns into SIGBUS: the shell sees
// status 135. Exit 0: the load returned; 2: no /dev/mem; 3: mmap refused.

        .global _start
        .text
_start:
        mov     x0, #-100               // AT_FDCWD
        adr     x1, path
        ldr     x2, =0x101000           // O_RDONLY | O_SYNC
        mov     x8, #56                 // openat
        svc     #0
        tbnz    x0, #63, no_devmem
        mov     x4, x0
        mov     x0, #0
        mov     x1, #4096
        mov     x2, #1                  // PROT_READ
        mov     x3, #1                  // MAP_SHARED
        ldr     x5, =PROBE_PA
        mov     x8, #222                // mmap
        svc     #0
        cmn     x0, #4096
        b.hi    refused
        ldr     x1, [x0]
        mov     x0, #0
        b       exit
no_devmem:
        mov     x0, #2
        b       exit
refused:
        mov     x0, #3
exit:
        mov     x8, #93                 // exit
        svc     #0
path:
        .asciz  "/dev/mem"
        .balign 8
        .ltorg
