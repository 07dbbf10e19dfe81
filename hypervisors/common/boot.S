// Boot, exception vectors and guest entry/exit of a pgwalk EL2 hypervisor.
//
// Shared by the Rust hypervisor (assembled by rustc's integrated assembler
// through global_asm!) and the C one (GNU as): no preprocessor, `//`
// comments, constants as .equ or linker symbols from layout.ld.
//
// The contract with the hypervisor's own code:
//   hv_main(cpu)                  entered once per CPU boot, never returns;
//                                 stack, VBAR_EL2 and FP access are set up,
//                                 the EL2 MMU is still off
//   hv_trap(frame, vector)        a trap from the guest (vector 8 = lower EL
//                                 AArch64 synchronous); may change the frame,
//                                 which is restored on return
//   hv_exception(frame, vector)   anything else; must not return
//   hv_enter_guest(frame, sp)     resets the stack to `sp`, loads the frame
//                                 and erets into the guest
//   hv_smc(x0, x1, x2, x3) -> x0  an SMC from EL2 (QEMU's PSCI)
//   hv_semihost_exit(code)        ends QEMU with an exit status (-semihosting)
//
// Frame (800 bytes, 16-byte aligned): x0..x30, ELR_EL2, SPSR_EL2, pad,
// q0..q31, FPSR, FPCR. The FP/SIMD registers are the guest's: hypervisor
// code may use them, so they are saved on every trap.

        .equ    FRAME_SIZE,     800
        .equ    FRAME_ELR,      248
        .equ    FRAME_SPSR,     256
        .equ    FRAME_Q,        272
        .equ    FRAME_FPSR,     784
        .equ    FRAME_FPCR,     792

        // CPTR_EL2 with E2H = 0: RES1 bits 13, 9 and 7:0; TFP, TZ and TSM
        // clear, so neither EL2 nor the guest traps on FP, SVE or SME.
        .equ    CPTR_EL2_VAL,   0x22ff

        .section .text.boot, "ax"
        .global _start
_start:
        msr     daifset, #0xf
        mov     x19, #0
        b       1f

        // QEMU's PSCI CPU_ON starts a secondary CPU here, at EL2 with its
        // MMU off; the hypervisor passes the CPU index as the context id.
        .global hv_secondary_entry
hv_secondary_entry:
        msr     daifset, #0xf
        mov     x19, x0
1:
        mrs     x1, CurrentEL
        cmp     x1, #(2 << 2)
        b.ne    hv_park
        ldr     x1, =HV_MAX_CPUS
        cmp     x19, x1
        b.hs    hv_park

        // Stack: the top of this CPU's slice of .stacks.
        ldr     x1, =__stacks_start
        ldr     x2, =HV_STACK_SIZE
        add     x3, x19, #1
        madd    x1, x2, x3, x1
        mov     sp, x1

        ldr     x1, =hv_vectors
        msr     vbar_el2, x1
        ldr     x1, =CPTR_EL2_VAL
        msr     cptr_el2, x1
        isb

        // CPU 0 boots first and alone: it clears .bss.
        cbnz    x19, 3f
        ldr     x1, =__bss_start
        ldr     x2, =__bss_end
2:      cmp     x1, x2
        b.hs    3f
        stp     xzr, xzr, [x1], #16
        b       2b
3:
        mov     x0, x19
        bl      hv_main
hv_park:
        wfe
        b       hv_park

        .text

        .global hv_smc
hv_smc:
        smc     #0
        ret

        // Semihosting SYS_EXIT (0x18) with an AArch64 parameter block:
        // ADP_Stopped_ApplicationExit and the exit status.
        .global hv_semihost_exit
hv_semihost_exit:
        sub     sp, sp, #16
        ldr     x1, =0x20026
        stp     x1, x0, [sp]
        mov     x1, sp
        mov     x0, #0x18
        hlt     #0xf000
        b       hv_park

        .global hv_enter_guest
hv_enter_guest:
        mov     sp, x1
        b       restore_from_x0

// Saves x2..x29, ELR, SPSR and the FP/SIMD state into the frame at sp,
// whose x0, x1 and x30 the vector entry saved already; x1 holds the
// vector number and is kept.
save_rest:
        stp     x2, x3, [sp, #16]
        stp     x4, x5, [sp, #32]
        stp     x6, x7, [sp, #48]
        stp     x8, x9, [sp, #64]
        stp     x10, x11, [sp, #80]
        stp     x12, x13, [sp, #96]
        stp     x14, x15, [sp, #112]
        stp     x16, x17, [sp, #128]
        stp     x18, x19, [sp, #144]
        stp     x20, x21, [sp, #160]
        stp     x22, x23, [sp, #176]
        stp     x24, x25, [sp, #192]
        stp     x26, x27, [sp, #208]
        stp     x28, x29, [sp, #224]
        mrs     x0, elr_el2
        str     x0, [sp, #FRAME_ELR]
        mrs     x0, spsr_el2
        str     x0, [sp, #FRAME_SPSR]
        add     x0, sp, #FRAME_Q
        stp     q0, q1, [x0, #0]
        stp     q2, q3, [x0, #32]
        stp     q4, q5, [x0, #64]
        stp     q6, q7, [x0, #96]
        stp     q8, q9, [x0, #128]
        stp     q10, q11, [x0, #160]
        stp     q12, q13, [x0, #192]
        stp     q14, q15, [x0, #224]
        stp     q16, q17, [x0, #256]
        stp     q18, q19, [x0, #288]
        stp     q20, q21, [x0, #320]
        stp     q22, q23, [x0, #352]
        stp     q24, q25, [x0, #384]
        stp     q26, q27, [x0, #416]
        stp     q28, q29, [x0, #448]
        stp     q30, q31, [x0, #480]
        mrs     x0, fpsr
        str     x0, [sp, #FRAME_FPSR]
        mrs     x0, fpcr
        str     x0, [sp, #FRAME_FPCR]
        mov     x0, sp
        ret

guest_trap:
        bl      save_rest
        bl      hv_trap
        mov     x0, sp
        b       restore_and_eret

fatal_trap:
        bl      save_rest
        bl      hv_exception
        b       hv_park

// A vector slot holds 32 instructions: it saves x0, x1 and x30, which
// the common code needs, and branches there with the vector number in x1.
.macro vector handler, number
        .balign 0x80
        sub     sp, sp, #FRAME_SIZE
        stp     x0, x1, [sp, #0]
        str     x30, [sp, #240]
        mov     x1, #\number
        b       \handler
.endm

        .balign 0x800
        .global hv_vectors
hv_vectors:
        vector  fatal_trap, 0   // current EL, SP_EL0: sync
        vector  fatal_trap, 1   //   IRQ
        vector  fatal_trap, 2   //   FIQ
        vector  fatal_trap, 3   //   SError
        vector  fatal_trap, 4   // current EL, SP_EL2: sync
        vector  fatal_trap, 5   //   IRQ
        vector  fatal_trap, 6   //   FIQ
        vector  fatal_trap, 7   //   SError
        vector  guest_trap, 8   // lower EL, AArch64: sync
        vector  fatal_trap, 9   //   IRQ (never routed here: HCR_EL2.IMO is clear)
        vector  fatal_trap, 10  //   FIQ
        vector  fatal_trap, 11  //   SError
        vector  fatal_trap, 12  // lower EL, AArch32 (the guest is AArch64 only)
        vector  fatal_trap, 13
        vector  fatal_trap, 14
        vector  fatal_trap, 15

// Loads the frame at x0 (the stack pointer already points past it, or at
// it for a trap return) and erets.
restore_and_eret:
        add     sp, sp, #FRAME_SIZE
restore_from_x0:
        ldr     x1, [x0, #FRAME_FPSR]
        msr     fpsr, x1
        ldr     x1, [x0, #FRAME_FPCR]
        msr     fpcr, x1
        add     x1, x0, #FRAME_Q
        ldp     q0, q1, [x1, #0]
        ldp     q2, q3, [x1, #32]
        ldp     q4, q5, [x1, #64]
        ldp     q6, q7, [x1, #96]
        ldp     q8, q9, [x1, #128]
        ldp     q10, q11, [x1, #160]
        ldp     q12, q13, [x1, #192]
        ldp     q14, q15, [x1, #224]
        ldp     q16, q17, [x1, #256]
        ldp     q18, q19, [x1, #288]
        ldp     q20, q21, [x1, #320]
        ldp     q22, q23, [x1, #352]
        ldp     q24, q25, [x1, #384]
        ldp     q26, q27, [x1, #416]
        ldp     q28, q29, [x1, #448]
        ldp     q30, q31, [x1, #480]
        ldp     x30, x1, [x0, #240]
        msr     elr_el2, x1
        ldr     x1, [x0, #FRAME_SPSR]
        msr     spsr_el2, x1
        ldp     x2, x3, [x0, #16]
        ldp     x4, x5, [x0, #32]
        ldp     x6, x7, [x0, #48]
        ldp     x8, x9, [x0, #64]
        ldp     x10, x11, [x0, #80]
        ldp     x12, x13, [x0, #96]
        ldp     x14, x15, [x0, #112]
        ldp     x16, x17, [x0, #128]
        ldp     x18, x19, [x0, #144]
        ldp     x20, x21, [x0, #160]
        ldp     x22, x23, [x0, #176]
        ldp     x24, x25, [x0, #192]
        ldp     x26, x27, [x0, #208]
        ldp     x28, x29, [x0, #224]
        ldp     x0, x1, [x0, #0]
        eret
        dsb     nsh
        isb

        .ltorg
