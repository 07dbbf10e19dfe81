// EL2 stage-1 probe for the pgwalk conformance harness: QEMU's MMU walks a
// hypervisor's own (EL2) table that pgwalk built.
//
// Booted by qemu-system-aarch64 (-M virt,virtualization=on) as an ELF via
// -kernel, so it starts at EL2 with every MMU off. It loads MAIR_EL2,
// TCR_EL2 and TTBR0_EL2 from a parameter block the host placed in RAM and,
// for each probe address, turns the EL2 MMU on inside a trampoline page
// that the table under test maps (identity, executable), asks the MMU to
// translate the address with AT S1E2R and AT S1E2W, branches to it to see
// whether EL2 may execute from it, and turns the MMU off again. Only the
// trampoline runs with the MMU on, and it touches no memory there: every
// load, store and UART access happens with the MMU off, so the table under
// test needs to map nothing but the trampoline.
//
// The branch always ends in an exception (the host maps nothing it could
// run: executable mappings point at physical addresses with no memory
// behind them), taken to the trampoline's own vectors, which record
// ESR_EL2 and return into the trampoline.
//
// Protocol (all output lines end in "\n"):
//   PGWALK-PROBE START <count:16 hex>
//   <PAR after AT S1E2R:16 hex> <PAR after AT S1E2W:16 hex> <ESR_EL2 after the branch:16 hex>
//                                                              (one per probe)
//   PGWALK-PROBE END
// An ESR of 0 means the branch came back without an exception; all ones
// that the address lies in the trampoline page, where the probe does not
// branch. On failure
// one of these ends the output, on a line of its own:
//   PGWALK-PROBE ERROR <reason> <value:16 hex>
//   PGWALK-PROBE EXCEPTION <vector:16 hex> <ESR_EL2> <ELR_EL2> <FAR_EL2>
//
// Parameter block at PARAMS_PA (little-endian u64s):
//   magic, mair_el2, tcr_el2, ttbr0_el2, count, then count probe addresses.
//
// The trampoline page is at TRAMPOLINE_PA (hyp_link.ld), which the
// harness exports; the table must map it to itself, readable and
// executable.

        .equ    UART_BASE,        0x09000000
        .equ    UART_DR,          0x00
        .equ    UART_FR,          0x18
        .equ    UART_CR,          0x30
        .equ    UART_FR_TXFF,     5
        .equ    UART_CR_ENABLE,   0x301

        .equ    PARAMS_PA,        0x44000000
        .equ    PARAMS_END,       0x48000000
        .equ    HEADER_BYTES,     40

        .equ    PSCI_SYSTEM_OFF,  0x84000008

        // SCTLR_EL2.M, .A (alignment checks), .WXN.
        .equ    SCTLR_M,          (1 << 0)
        .equ    SCTLR_A,          (1 << 1)
        .equ    SCTLR_WXN,        (1 << 19)

        .section .text.boot, "ax"
        .global _start
_start:
        msr     daifset, #0xf
        ldr     x0, =stack_top
        mov     sp, x0

        bl      uart_init

        mrs     x19, CurrentEL
        cmp     x19, #(2 << 2)
        b.eq    1f
        ldr     x0, =msg_not_el2
        mov     x1, x19
        b       fatal
1:
        ldr     x0, =vectors
        msr     vbar_el2, x0
        isb

        ldr     x20, =PARAMS_PA
        ldr     x0, [x20, #0]
        ldr     x1, =0x31484b4c41574750         // "PGWALKH1"
        cmp     x0, x1
        b.eq    2f
        mov     x1, x0
        ldr     x0, =msg_bad_magic
        b       fatal
2:
        ldr     x21, [x20, #32]                 // count
        ldr     x0, =((PARAMS_END - PARAMS_PA - HEADER_BYTES) / 8)
        cmp     x21, x0
        b.ls    3f
        mov     x1, x21
        ldr     x0, =msg_bad_count
        b       fatal
3:
        ldr     x0, =msg_start_prefix
        bl      puts
        mov     x0, x21
        bl      puthex
        bl      putnl

        ldr     x0, [x20, #8]
        msr     mair_el2, x0
        ldr     x0, [x20, #16]
        msr     tcr_el2, x0
        ldr     x0, [x20, #24]
        msr     ttbr0_el2, x0
        isb
        // A fresh boot holds no EL2 translations; a real hypervisor would
        // invalidate before turning its MMU on, and so does this.
        dsb     ishst
        tlbi    alle2
        dsb     ish
        isb

        add     x22, x20, #HEADER_BYTES         // next probe
        mov     x23, x21                        // remaining
probe_loop:
        cbz     x23, probe_done
        ldr     x0, [x22], #8
        bl      tramp_probe
        mov     x24, x1
        mov     x25, x2
        bl      puthex
        mov     x0, #0x20
        bl      putc
        mov     x0, x24
        bl      puthex
        mov     x0, #0x20
        bl      putc
        mov     x0, x25
        bl      puthex
        bl      putnl
        sub     x23, x23, #1
        b       probe_loop

probe_done:
        ldr     x0, =msg_end
        bl      puts
        b       poweroff

// Print "PGWALK-PROBE ERROR <msg> <x1 as hex>" and power off.
fatal:
        mov     x19, x1
        mov     x20, x0
        bl      putnl
        ldr     x0, =msg_error_prefix
        bl      puts
        mov     x0, x20
        bl      puts
        mov     x0, #0x20
        bl      putc
        mov     x0, x19
        bl      puthex
        bl      putnl
        b       poweroff

// PSCI SYSTEM_OFF through the SMC conduit (virtualization=on), then
// semihosting, then park; the host has a timeout for the last case.
poweroff:
        ldr     x0, =PSCI_SYSTEM_OFF
        smc     #0
        ldr     x0, =msg_psci_returned
        bl      puts
        ldr     x0, =semihosting_exit_block
        mov     x1, x0
        mov     x0, #0x20                       // SYS_EXIT
        hlt     #0xf000
park:
        wfi
        b       park

// ---------------------------------------------------------------- UART

uart_init:
        ldr     x1, =UART_BASE
        mov     w0, #UART_CR_ENABLE
        str     w0, [x1, #UART_CR]
        ret

// putc(x0): clobbers x1, x2.
putc:
        ldr     x1, =UART_BASE
1:
        ldr     w2, [x1, #UART_FR]
        tbnz    w2, #UART_FR_TXFF, 1b
        str     w0, [x1, #UART_DR]
        ret

putnl:
        mov     x0, #0x0a
        b       putc

// puts(x0 = NUL-terminated string): clobbers x0-x4.
puts:
        mov     x3, x0
        mov     x4, x30
1:
        ldrb    w0, [x3], #1
        cbz     w0, 2f
        bl      putc
        b       1b
2:
        mov     x30, x4
        ret

// puthex(x0): prints 16 lowercase hex digits. Clobbers x0-x2, x5-x7.
puthex:
        mov     x5, x0
        mov     x6, #60
        mov     x7, x30
1:
        lsr     x0, x5, x6
        and     x0, x0, #0xf
        cmp     x0, #10
        b.lo    2f
        add     x0, x0, #(0x61 - 10 - 0x30)
2:
        add     x0, x0, #0x30
        bl      putc
        subs    x6, x6, #4
        b.ge    1b
        mov     x30, x7
        ret

// ----------------------------------------- exceptions with the MMU off

        .macro  vector index
        .balign 0x80
        mov     x19, #\index
        b       exception_common
        .endm

        .balign 0x800
vectors:
        vector  0
        vector  1
        vector  2
        vector  3
        vector  4
        vector  5
        vector  6
        vector  7
        vector  8
        vector  9
        vector  10
        vector  11
        vector  12
        vector  13
        vector  14
        vector  15

exception_common:
        ldr     x0, =in_exception
        ldr     x1, [x0]
        cbnz    x1, park
        mov     x1, #1
        str     x1, [x0]
        ldr     x0, =stack_top
        mov     sp, x0

        bl      putnl
        ldr     x0, =msg_exception
        bl      puts
        mov     x0, x19
        bl      puthex
        mov     x0, #0x20
        bl      putc
        mrs     x0, esr_el2
        bl      puthex
        mov     x0, #0x20
        bl      putc
        mrs     x0, elr_el2
        bl      puthex
        mov     x0, #0x20
        bl      putc
        mrs     x0, far_el2
        bl      puthex
        bl      putnl
        b       poweroff

        .ltorg

// ------------------------------------------------------- the trampoline
//
// One page, the only code that runs with the EL2 MMU on: its own vectors
// (2 KiB aligned, at the start of the page), then tramp_probe. Nothing in
// it touches memory. The code fits 4 KiB; its page is 64 KiB (the largest
// granule's), with nothing else in it.

        .section .trampoline, "ax"
        .balign 0x800
tramp_vectors:
        .rept   16
        .balign 0x80
        b       tramp_exception
        .endr

// tramp_probe(x0 = address) -> x0 = PAR after AT S1E2R, x1 = PAR after
// AT S1E2W, x2 = ESR_EL2 of the exception the branch to the address took
// (0 if none, all ones if not branched). Clobbers x3-x11.
tramp_probe:
        mov     x10, x30
        mov     x3, x0
        mrs     x9, vbar_el2
        adr     x4, tramp_vectors
        msr     vbar_el2, x4
        mrs     x4, sctlr_el2
        bic     x5, x4, #SCTLR_A
        bic     x5, x5, #SCTLR_WXN
        orr     x5, x5, #SCTLR_M
        isb
        msr     sctlr_el2, x5
        isb
        at      s1e2r, x3
        isb
        mrs     x6, par_el1
        at      s1e2w, x3
        isb
        mrs     x7, par_el1
        // Never branch into the trampoline's page (64 KiB: the largest
        // granule's): it would run from the middle of this code.
        mov     x8, #-1
        adr     x11, tramp_vectors
        sub     x11, x3, x11
        cmp     x11, #0x10000
        b.lo    tramp_after_branch
        mov     x8, #0
        blr     x3
tramp_after_branch:
        msr     sctlr_el2, x4
        isb
        msr     vbar_el2, x9
        isb
        mov     x0, x6
        mov     x1, x7
        mov     x2, x8
        mov     x30, x10
        ret

tramp_exception:
        mrs     x8, esr_el2
        adr     x11, tramp_after_branch
        msr     elr_el2, x11
        eret
tramp_end:

// ---------------------------------------------------------------- data

        .section .rodata, "a"
msg_start_prefix:   .asciz "PGWALK-PROBE START "
msg_end:            .asciz "PGWALK-PROBE END\n"
msg_error_prefix:   .asciz "PGWALK-PROBE ERROR "
msg_not_el2:        .asciz "not-at-el2 CurrentEL"
msg_bad_magic:      .asciz "bad-magic"
msg_bad_count:      .asciz "bad-count"
msg_exception:      .asciz "PGWALK-PROBE EXCEPTION "
msg_psci_returned:  .asciz "PGWALK-PROBE NOTE psci-system-off-returned\n"

        .section .data, "aw"
        .balign 8
in_exception:
        .quad   0
semihosting_exit_block:
        .quad   0x20026
        .quad   0

        .section .bss.stack, "aw", @nobits
        .balign 16
        .space  0x4000
stack_top:
