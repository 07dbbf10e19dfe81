//! The machine layout, from `hypervisors/common/layout.ld` (see build.rs),
//! and the linker's symbols for what the image itself occupies.

include!(concat!(env!("OUT_DIR"), "/layout.rs"));

/// Page size of every table here (4 KiB granule at EL2 and at stage 2).
pub const PAGE: u64 = 4096;
/// Size of a level-2 block.
pub const BLOCK: u64 = 2 << 20;
/// Bytes of guest RAM.
pub const GUEST_RAM_SIZE: u64 = GUEST_RAM_END - GUEST_RAM_BASE;
/// vCPUs (one per physical CPU).
pub const MAX_CPUS: usize = HV_MAX_CPUS as usize;

extern "C" {
    static __text_end: u8;
    static __rodata_end: u8;
    static __pool_start: u8;
    static __pool_end: u8;
    static __stacks_start: u8;
    static __hv_end: u8;
}

/// End of the hypervisor's code (start is `HV_BASE`).
pub fn text_end() -> u64 {
    (&raw const __text_end) as u64
}

/// End of its read-only data.
pub fn rodata_end() -> u64 {
    (&raw const __rodata_end) as u64
}

/// The stage-2 table page pool.
pub fn pool() -> (u64, u64) {
    (
        (&raw const __pool_start) as u64,
        (&raw const __pool_end) as u64,
    )
}

/// Top of `cpu`'s stack.
pub fn stack_top(cpu: usize) -> u64 {
    (&raw const __stacks_start) as u64 + (cpu as u64 + 1) * HV_STACK_SIZE
}

/// End of everything the image occupies.
pub fn hv_end() -> u64 {
    (&raw const __hv_end) as u64
}
