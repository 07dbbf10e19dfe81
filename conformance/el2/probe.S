// EL2 probe for the pgwalk conformance harness.
//
// Booted by qemu-system-aarch64 (-M virt,virtualization=on) as an ELF via
// -kernel, so it starts at EL2 with every MMU off. It programs stage 2 from a
// parameter block the host placed in RAM, asks the emulated MMU to translate
// each probe address with AT S12E1R and AT S12E1W, prints both PAR_EL1 values
// on the PL011 and powers the machine off through PSCI.
//
// Protocol (all output lines end in "\n"):
//   PGWALK-PROBE ID_AA64MMFR0_EL1 <value:16 hex>
//   PGWALK-PROBE START <count:16 hex>
//   <PAR after AT S12E1R:16 hex> <PAR after AT S12E1W:16 hex>   (one per probe)
//   PGWALK-PROBE END
// On failure one of these ends the output, on a line of its own:
//   PGWALK-PROBE ERROR <reason> <value:16 hex>
//   PGWALK-PROBE EXCEPTION <vector:16 hex> <ESR_EL2> <ELR_EL2> <FAR_EL2>
// A VTCR_EL2 that asks for what the CPU lacks (per ID_AA64MMFR0_EL1: the
// granule at stage 2, 52-bit addresses for DS = 1, a PS beyond PARange) is
// an ERROR naming the feature, with ID_AA64MMFR0_EL1 as the value, before
// any probe: an emulator without the feature would otherwise answer with
// faults that look like pgwalk's.
//
// Parameter block at PARAMS_PA (little-endian u64s):
//   magic, vtcr_el2, vttbr_el2, count, then count probe addresses.
//
// The EL2 MMU stays off, so every data access is Device-nGnRnE; all accesses
// below are naturally aligned because unaligned Device accesses fault.

        .equ    UART_BASE,        0x09000000
        .equ    UART_DR,          0x00
        .equ    UART_FR,          0x18
        .equ    UART_CR,          0x30
        .equ    UART_FR_TXFF,     5
        // UARTEN | TXE | RXE: QEMU does not insist, real PL011s do.
        .equ    UART_CR_ENABLE,   0x301

        .equ    PARAMS_PA,        0x44000000
        .equ    PARAMS_END,       0x48000000

        .equ    PSCI_SYSTEM_OFF,  0x84000008

        // HCR_EL2.VM (stage 2 on), .DC (stage-1-off accesses are Normal WB,
        // so the stage-2 attributes are what PAR reports) and .RW (EL1 is
        // AArch64; AT S12E1* translates for an AArch64 EL1).
        .equ    HCR_VM,           (1 << 0)
        .equ    HCR_DC,           (1 << 12)
        .equ    HCR_RW,           (1 << 31)

        .section .text.boot, "ax"
        .global _start
_start:
        msr     daifset, #0xf
        ldr     x0, =stack_top
        mov     sp, x0

        bl      uart_init

        // Anything but EL2 means the QEMU command line is wrong; say so
        // before touching EL2-only registers (which would trap to a vector
        // table we could not have installed).
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

        // Validate the parameter block before trusting its count.
        ldr     x20, =PARAMS_PA
        ldr     x0, [x20, #0]
        ldr     x1, =0x31504b4c41574750         // "PGWALKP1"
        cmp     x0, x1
        b.eq    2f
        mov     x1, x0
        ldr     x0, =msg_bad_magic
        b       fatal
2:
        mrs     x25, id_aa64mmfr0_el1
        ldr     x0, =msg_mmfr0_prefix
        bl      puts
        mov     x0, x25
        bl      puthex
        bl      putnl
        ldr     x26, [x20, #8]                  // vtcr_el2
        bl      check_features

        ldr     x21, [x20, #24]                 // count
        ldr     x0, =((PARAMS_END - PARAMS_PA - 32) / 8)
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

        // Stage-1 translation for EL1&0 must be off so the AT input address
        // is the IPA itself.
        mrs     x0, sctlr_el1
        bic     x0, x0, #1
        msr     sctlr_el1, x0

        ldr     x0, [x20, #8]
        msr     vtcr_el2, x0
        ldr     x0, [x20, #16]
        msr     vttbr_el2, x0
        ldr     x0, =(HCR_VM | HCR_DC | HCR_RW)
        msr     hcr_el2, x0
        isb

        // Stale stage-2 entries cannot exist on a fresh boot, but a real
        // hypervisor would invalidate here and the cost is nil.
        dsb     ishst
        tlbi    vmalls12e1
        dsb     ish
        isb

        add     x22, x20, #32                   // next probe
        mov     x23, x21                        // remaining
probe_loop:
        cbz     x23, probe_done
        ldr     x24, [x22], #8

        at      s12e1r, x24
        isb
        mrs     x25, par_el1
        at      s12e1w, x24
        isb
        mrs     x26, par_el1

        mov     x0, x25
        bl      puthex
        mov     x0, #0x20
        bl      putc
        mov     x0, x26
        bl      puthex
        bl      putnl

        sub     x23, x23, #1
        b       probe_loop

probe_done:
        ldr     x0, =msg_end
        bl      puts
        b       poweroff

// Checks that the CPU implements what the VTCR_EL2 in x26 asks, from
// ID_AA64MMFR0_EL1 in x25; reports the first feature missing (fatal) or
// returns. Clobbers x0-x5.
//
// Stage-2 granule support (TGran4_2 43:40, TGran64_2 39:36, TGran16_2
// 35:32): 0 = as the stage-1 field says, 1 = none, 2 = supported, 3 = with
// 52-bit addresses. The stage-1 fields are mapped to the same scale:
// TGran4 (31:28) 0 yes, 1 52-bit, 0xf none; TGran64 (27:24) 0 yes, 0xf
// none; TGran16 (23:20) 0 none, 1 yes, 2 52-bit.
check_features:
        ubfx    x1, x26, #14, #2                // TG0
        cmp     x1, #0b00
        b.eq    1f
        cmp     x1, #0b01
        b.eq    2f
        ubfx    x2, x25, #32, #4                // 16 KiB (TG0 0b11 is reserved:
        ubfx    x3, x25, #20, #4                // the MMU refuses it itself)
        add     x3, x3, #1
        b       3f
1:      ubfx    x2, x25, #40, #4                // 4 KiB
        ubfx    x3, x25, #28, #4
        add     x3, x3, #2
        cmp     x3, #(0xf + 2)
        mov     x4, #1
        csel    x3, x4, x3, eq
        b       3f
2:      ubfx    x2, x25, #36, #4                // 64 KiB
        ubfx    x3, x25, #24, #4
        cmp     x3, #0xf
        mov     x4, #1
        mov     x5, #2
        csel    x3, x4, x5, eq
3:      cmp     x2, #0
        csel    x2, x3, x2, eq
        mov     x1, x25
        cmp     x2, #2
        b.hs    4f
        ldr     x0, =msg_no_granule
        b       fatal
4:      tbz     x26, #32, 5f                    // DS: needs 52-bit support
        cmp     x2, #3
        b.eq    5f
        ldr     x0, =msg_no_lpa2
        b       fatal
5:      ubfx    x2, x26, #16, #3                // PS
        ubfx    x3, x25, #0, #4                 // PARange
        cmp     x2, x3
        b.ls    6f
        ldr     x0, =msg_no_pa_size
        b       fatal
6:      ret

// Print "PGWALK-PROBE ERROR <msg> <x1 as hex>" and power off.
// x0 = message, x1 = value.
fatal:
        mov     x19, x1
        mov     x20, x0
        bl      putnl                           // own line, whatever came before
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

// PSCI SYSTEM_OFF. With virtualization=on QEMU's PSCI conduit is SMC (a
// guest hypervisor owns HVC). Only a wrong QEMU command line lands us at
// EL1, where the conduit is HVC; try that so the error does not turn into a
// timeout (at EL3 there is no PSCI to call). If the call ever returns, fall
// back to semihosting SYS_EXIT (only works when QEMU runs with -semihosting)
// and finally park; the host has a timeout for that case.
poweroff:
        mrs     x1, CurrentEL
        ldr     x0, =PSCI_SYSTEM_OFF
        cmp     x1, #(1 << 2)
        b.ne    1f
        hvc     #0
1:
        cmp     x1, #(2 << 2)
        b.ne    2f
        smc     #0
2:
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

// ---------------------------------------------------------- exceptions

// Every vector reports and powers off: the host must see a clear failure
// instead of a hang. A nested exception (e.g. while reporting, or the HLT
// fallback without semihosting) parks instead of recursing forever.
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

        bl      putnl                           // own line, whatever came before
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

// ---------------------------------------------------------------- data

        .section .rodata, "a"
msg_start_prefix:   .asciz "PGWALK-PROBE START "
msg_end:            .asciz "PGWALK-PROBE END\n"
msg_error_prefix:   .asciz "PGWALK-PROBE ERROR "
msg_not_el2:        .asciz "not-at-el2 CurrentEL"
msg_bad_magic:      .asciz "bad-magic"
msg_bad_count:      .asciz "bad-count"
msg_mmfr0_prefix:   .asciz "PGWALK-PROBE ID_AA64MMFR0_EL1 "
msg_no_granule:     .asciz "stage-2-granule-not-implemented(ID_AA64MMFR0_EL1)"
msg_no_lpa2:        .asciz "52-bit-addresses-(FEAT_LPA2)-not-implemented-for-this-granule(ID_AA64MMFR0_EL1)"
msg_no_pa_size:     .asciz "VTCR_EL2.PS-beyond-the-implemented-PARange(ID_AA64MMFR0_EL1)"
msg_exception:      .asciz "PGWALK-PROBE EXCEPTION "
msg_psci_returned:  .asciz "PGWALK-PROBE NOTE psci-system-off-returned\n"

        .section .data, "aw"
        .balign 8
in_exception:
        .quad   0
// SYS_EXIT parameter block: ADP_Stopped_ApplicationExit, status 0.
semihosting_exit_block:
        .quad   0x20026
        .quad   0

        .section .bss.stack, "aw", @nobits
        .balign 16
        .space  0x4000
stack_top:
