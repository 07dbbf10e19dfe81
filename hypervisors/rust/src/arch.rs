//! The few AArch64 instructions the hypervisor needs, each behind a small
//! function: system registers, barriers, TLB and cache maintenance, the
//! counter.

use core::arch::asm;

/// Reads a system register by name.
macro_rules! read_sysreg {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a system register at EL2 has no side effect on
        // memory; every register named here exists on the CPUs we run on.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Writes a system register by name. It expands to inline assembly, so it
/// needs an `unsafe` block at the call site, whose SAFETY comment says why
/// that register and value leave the hypervisor's memory, stack and
/// translation intact. Callers add the `isb` when the change must take
/// effect before the next instruction.
macro_rules! write_sysreg {
    ($reg:literal, $val:expr) => {{
        let v: u64 = $val;
        core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nostack, preserves_flags))
    }};
}

pub(crate) use {read_sysreg, write_sysreg};

/// Instruction synchronisation barrier.
#[inline(always)]
pub fn isb() {
    // SAFETY: a barrier has no operands.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Waits for an interrupt (a guest's WFI, done on its behalf).
#[inline(always)]
pub fn wfi() {
    // SAFETY: WFI only pauses the CPU; interrupts are masked at EL2 and
    // routed to EL1, so the wake-up returns here.
    unsafe { asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
}

/// The physical counter.
#[inline(always)]
pub fn counter() -> u64 {
    isb();
    read_sysreg!("cntpct_el0")
}

/// Counter ticks per second.
pub fn counter_freq() -> u64 {
    read_sysreg!("cntfrq_el0")
}

/// Invalidates the stage-2 (and combined stage-1&2) TLB entries of the
/// current VMID for one IPA, in the inner shareable domain
/// (`__kvm_tlb_flush_vmid_ipa`): the stage-2 entry by IPA, then every
/// stage-1 entry of the VMID, which may hold the combined translation.
pub fn tlbi_ipa(ipa: u64) {
    // SAFETY: TLB maintenance only drops cached translations; the barriers
    // order it after the table update and before the next access.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi ipas2e1is, {page}",
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            page = in(reg) ipa >> 12,
            options(nostack, preserves_flags)
        )
    };
}

/// As [`tlbi_ipa`] for every page of `ipa..ipa + size`, with one stage-1
/// invalidation at the end.
pub fn tlbi_ipa_range(ipa: u64, size: u64) {
    // SAFETY: as in `tlbi_ipa`.
    unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
    let mut page = ipa >> 12;
    let end = (ipa + size).div_ceil(4096);
    while page < end {
        // SAFETY: as in `tlbi_ipa`.
        unsafe { asm!("tlbi ipas2e1is, {}", in(reg) page, options(nostack, preserves_flags)) };
        page += 1;
    }
    // SAFETY: as in `tlbi_ipa`.
    unsafe {
        asm!(
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Invalidates every stage-1 and stage-2 TLB entry of the current VMID
/// (`__kvm_tlb_flush_vmid`).
pub fn tlbi_vmid() {
    // SAFETY: as in `tlbi_ipa`.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Invalidates every EL2 TLB entry of this CPU (before turning its MMU on).
pub fn tlbi_el2_local() {
    // SAFETY: as in `tlbi_ipa`.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi alle2",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Invalidates the last-level EL2 translation of `va` on every CPU of the
/// inner shareable domain, after the table store that removed it.
pub fn tlbi_el2_va(va: u64) {
    // SAFETY: as in `tlbi_ipa`.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vale2is, {page}",
            "dsb ish",
            "isb",
            page = in(reg) (va >> 12) & ((1 << 44) - 1),
            options(nostack, preserves_flags)
        )
    };
}

/// Invalidates every cached EL2 translation and table walk of `va` on
/// every CPU of the inner shareable domain (a table entry was removed).
pub fn tlbi_el2_va_walks(va: u64) {
    // SAFETY: as in `tlbi_ipa`.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vae2is, {page}",
            "dsb ish",
            "isb",
            page = in(reg) (va >> 12) & ((1 << 44) - 1),
            options(nostack, preserves_flags)
        )
    };
}

/// Makes table stores visible to the table walker before the mappings they
/// make are used.
pub fn publish_tables() {
    // SAFETY: barriers have no operands.
    unsafe { asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
}

/// Smallest data and instruction cache lines, from CTR_EL0, and whether
/// the instruction cache needs no invalidation for coherence (DIC).
fn cache_lines() -> (u64, u64, bool) {
    let ctr = read_sysreg!("ctr_el0");
    let dline = 4 << ((ctr >> 16) & 0xf);
    let iline = 4 << (ctr & 0xf);
    let dic = ctr & (1 << 29) != 0;
    (dline, iline, dic)
}

/// Cleans and invalidates the data cache to the point of coherency for
/// `va..va + size` (identity-mapped at EL2).
pub fn dcache_clean_inval_poc(va: u64, size: u64) {
    let (line, _, _) = cache_lines();
    let mut addr = va & !(line - 1);
    while addr < va + size {
        // SAFETY: the range is mapped at EL2 (all guest RAM is); DC CIVAC
        // writes back and drops lines, never changing memory contents.
        unsafe { asm!("dc civac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    // SAFETY: a barrier.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
}

/// Invalidates the instruction cache to the point of unification for
/// `va..va + size`, unless CTR_EL0.DIC says it is coherent.
pub fn icache_inval_pou(va: u64, size: u64) {
    let (_, line, dic) = cache_lines();
    if !dic {
        let mut addr = va & !(line - 1);
        while addr < va + size {
            // SAFETY: the range is mapped at EL2; IC IVAU only drops lines.
            unsafe { asm!("ic ivau, {}", in(reg) addr, options(nostack, preserves_flags)) };
            addr += line;
        }
    }
    // SAFETY: barriers.
    unsafe { asm!("dsb ish", "isb", options(nostack, preserves_flags)) };
}

extern "C" {
    fn hv_smc(x0: u64, x1: u64, x2: u64, x3: u64) -> u64;
    fn hv_semihost_exit(code: u64) -> !;
    fn hv_enter_guest(frame: *const crate::trap::Frame, sp: u64) -> !;
    /// The secondary CPUs' entry point (boot.S).
    fn hv_secondary_entry();
}

/// An SMC from EL2: QEMU's own PSCI implementation answers it.
///
/// # Safety
///
/// The call must not start a CPU anywhere but at `hv_secondary_entry`, and
/// must not otherwise touch memory the hypervisor uses: the PSCI wrappers
/// below are the calls that qualify.
unsafe fn smc(x0: u64, x1: u64, x2: u64, x3: u64) -> u64 {
    // SAFETY: `hv_smc` issues SMC #0 and returns x0; what the call does is
    // the caller's contract.
    unsafe { hv_smc(x0, x1, x2, x3) }
}

/// PSCI CPU_ON for the physical CPU `mpidr`, entering the hypervisor at
/// `hv_secondary_entry` with `cpu` as context id. QEMU's PSCI return code.
pub fn psci_cpu_on(mpidr: u64, cpu: usize) -> i64 {
    // SAFETY: the new CPU starts at the hypervisor's own secondary entry,
    // which sets up its own stack slice for `cpu` (checked there).
    unsafe {
        smc(
            0xc400_0003,
            mpidr,
            hv_secondary_entry as *const () as u64,
            cpu as u64,
        ) as i64
    }
}

/// PSCI CPU_OFF for this CPU; returns only if QEMU refused.
pub fn psci_cpu_off() -> i64 {
    // SAFETY: turning this CPU off touches no memory.
    unsafe { smc(0x8400_0002, 0, 0, 0) as i64 }
}

/// PSCI SYSTEM_OFF; returns only if QEMU refused.
pub fn psci_system_off() {
    // SAFETY: powering off touches no memory.
    unsafe { smc(0x8400_0008, 0, 0, 0) };
}

/// PSCI SYSTEM_RESET; returns only if QEMU refused.
pub fn psci_system_reset() {
    // SAFETY: a reset starts the machine over, from the ELF QEMU loads.
    unsafe { smc(0x8400_0009, 0, 0, 0) };
}

/// Ends QEMU with `code` through semihosting (`-semihosting`).
pub fn semihost_exit(code: u64) -> ! {
    // SAFETY: the HLT semihosting call reads a two-word block on our stack
    // and does not return when semihosting is on; without it the CPU parks.
    unsafe { hv_semihost_exit(code) }
}

/// Leaves the hypervisor for the guest, resetting this CPU's stack to
/// `sp` (nothing of the hypervisor's call chain survives).
///
/// # Safety
///
/// `frame` holds a guest state to run (a valid EL1 entry in ELR and SPSR),
/// and nothing on this CPU's stack below `sp` is still needed.
pub unsafe fn enter_guest(frame: &crate::trap::Frame, sp: u64) -> ! {
    // SAFETY: the caller's contract; `hv_enter_guest` only reads the frame
    // before the eret, and the frame itself lies below `sp`, untouched by
    // the new stack until the next trap.
    unsafe { hv_enter_guest(frame, sp) }
}
