//! The C types and constants.
//!
//! The `kvm_*` items keep the kernel's names, field order and constant
//! values (Linux 6.12 LTS `arch/arm64/include/asm/kvm_pgtable.h`), so C
//! code written against the kernel compiles unchanged. The `pgw_*` items are the
//! typed API's own.
//!
//! Integers that C writes and Rust reads (flags, prot, action codes) are
//! plain integer fields here, never Rust enums: a C value outside an enum's
//! variants would be undefined behaviour the moment Rust held it. The enums
//! below exist so that the header names the values; Rust only ever writes
//! them, or converts C integers into them with a checked `TryFrom`.

#![allow(non_camel_case_types)]

use core::ffi::{c_int, c_void};

use num_enum::{IntoPrimitive, TryFromPrimitive};

/// A page-table entry, as the kernel's `kvm_pte_t`.
pub type kvm_pte_t = u64;

// ---------------------------------------------------------------------------
// enum kvm_pgtable_prot (64-bit values: #defines, since strict C11 enums
// stop at `int`), with Linux 6.12's values.
// ---------------------------------------------------------------------------

/// Executable (at EL1 and EL0).
pub const KVM_PGTABLE_PROT_X: u64 = 1u64 << 0;
/// Writable.
pub const KVM_PGTABLE_PROT_W: u64 = 1u64 << 1;
/// Readable.
pub const KVM_PGTABLE_PROT_R: u64 = 1u64 << 2;
/// Device-nGnRE memory (never executable).
pub const KVM_PGTABLE_PROT_DEVICE: u64 = 1u64 << 3;
/// Normal non-cacheable memory (never executable).
pub const KVM_PGTABLE_PROT_NORMAL_NC: u64 = 1u64 << 4;
/// Software bit 0 (descriptor bit 55).
pub const KVM_PGTABLE_PROT_SW0: u64 = 1u64 << 55;
/// Software bit 1 (descriptor bit 56).
pub const KVM_PGTABLE_PROT_SW1: u64 = 1u64 << 56;
/// Software bit 2 (descriptor bit 57).
pub const KVM_PGTABLE_PROT_SW2: u64 = 1u64 << 57;
/// Software bit 3 (descriptor bit 58).
pub const KVM_PGTABLE_PROT_SW3: u64 = 1u64 << 58;
/// Readable and writable.
pub const KVM_PGTABLE_PROT_RW: u64 = (1u64 << 2) | (1u64 << 1);
/// Readable, writable and executable.
pub const KVM_PGTABLE_PROT_RWX: u64 = (1u64 << 2) | (1u64 << 1) | (1u64 << 0);

/// Executable at EL1 only (FEAT_XNX): pgwalk's own bit, for the typed API;
/// the `kvm_pgtable_*` functions drop it, as they drop every bit 6.12 does
/// not define.
pub const PGW_PROT_PX: u64 = 1u64 << 5;
/// Executable at EL0 only (FEAT_XNX): pgwalk's own bit, as `PGW_PROT_PX`.
pub const PGW_PROT_UX: u64 = 1u64 << 6;

// ---------------------------------------------------------------------------
// Linux 6.12's other constants of kvm_pgtable.h (their 4 KiB-granule values
// where they depend on the granule).
// ---------------------------------------------------------------------------

/// The first level a walk may start at (with LPA2).
pub const KVM_PGTABLE_FIRST_LEVEL: i8 = -1;
/// The last level: its entries are pages.
pub const KVM_PGTABLE_LAST_LEVEL: i8 = 3;
/// The first level that holds blocks with the 4 KiB granule (2 with 16 KiB
/// and 64 KiB).
pub const KVM_PGTABLE_MIN_BLOCK_LEVEL: i8 = 1;
/// Descriptor bit 0: the entry is valid.
pub const KVM_PTE_VALID: u64 = 1u64 << 0;
/// The output address bits of a descriptor (4 KiB granule, without LPA2).
pub const KVM_PTE_ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
/// With the 64 KiB granule, descriptor bits 15:12 hold PA\[51:48\].
pub const KVM_PTE_ADDR_51_48: u64 = 0xf000;
/// The output address bits with LPA2 (4 KiB granule).
pub const KVM_PTE_ADDR_MASK_LPA2: u64 = 0x0003_ffff_ffff_f000;
/// With LPA2, descriptor bits 9:8 hold PA\[51:50\].
pub const KVM_PTE_ADDR_51_50_LPA2: u64 = 0x300;
/// An output address that is none (what `set_owner` maps).
pub const KVM_PHYS_INVALID: u64 = u64::MAX;
/// A leaf's lower attributes, bits 11:2.
pub const KVM_PTE_LEAF_ATTR_LO: u64 = 0xffc;
/// Stage-2 MemAttr, bits 5:2.
pub const KVM_PTE_LEAF_ATTR_LO_S2_MEMATTR: u64 = 0x3c;
/// Stage-2 S2AP read, bit 6.
pub const KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R: u64 = 1u64 << 6;
/// Stage-2 S2AP write, bit 7.
pub const KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W: u64 = 1u64 << 7;
/// Stage-2 shareability, bits 9:8.
pub const KVM_PTE_LEAF_ATTR_LO_S2_SH: u64 = 0x300;
/// Inner shareable.
pub const KVM_PTE_LEAF_ATTR_LO_S2_SH_IS: u64 = 3;
/// The access flag, bit 10.
pub const KVM_PTE_LEAF_ATTR_LO_S2_AF: u64 = 1u64 << 10;
/// A leaf's upper attributes, bits 63:50.
pub const KVM_PTE_LEAF_ATTR_HI: u64 = 0xfffc_0000_0000_0000;
/// The software bits, 58:55.
pub const KVM_PTE_LEAF_ATTR_HI_SW: u64 = 0x0780_0000_0000_0000;
/// Stage-2 execute-never (XN\[1\], bit 54).
pub const KVM_PTE_LEAF_ATTR_HI_S2_XN: u64 = 1u64 << 54;
/// What relaxing and restricting permissions touch: S2AP and XN.
pub const KVM_PTE_LEAF_ATTR_S2_PERMS: u64 = (1u64 << 6) | (1u64 << 7) | (1u64 << 54);
/// The owner id of an annotation, bits 9:2 of an invalid entry.
pub const KVM_INVALID_PTE_OWNER_MASK: u64 = 0x3fc;
/// The largest owner id `kvm_pgtable_stage2_set_owner` accepts.
pub const KVM_MAX_OWNER_ID: u32 = 1;
/// The marker of an entry in the middle of a break-before-make (bit 10 of
/// an invalid entry).
pub const KVM_INVALID_PTE_LOCKED: u64 = 1u64 << 10;
/// The level a TLB callback receives when none is known
/// (`TLBI_TTL_UNKNOWN`, `INT_MAX`): invalidate whatever level maps the
/// address.
// A literal: cbindgen leaves out constants it cannot evaluate
// (`c_int::MAX`); a test checks the value.
pub const TLBI_TTL_UNKNOWN: c_int = 0x7fff_ffff;

/// `enum kvm_pgtable_walk_flags`: which entries a walk visits, and how.
///
/// Functions take these as a `uint32_t` bit set. The `kvm_pgtable_*`
/// functions ignore a bit not listed here, as Linux 6.12 does; the typed
/// `pgw_*` ones refuse it with `-PGW_EINVAL`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kvm_pgtable_walk_flags {
    /// Visit leaves: blocks, pages and invalid entries.
    KVM_PGTABLE_WALK_LEAF = 1 << 0,
    /// Visit table entries before their children.
    KVM_PGTABLE_WALK_TABLE_PRE = 1 << 1,
    /// Visit table entries after their children.
    KVM_PGTABLE_WALK_TABLE_POST = 1 << 2,
    /// The walker runs beside others (read lock) and changes entries with
    /// compare-and-swap. A visitor's `-EAGAIN` is ignored: the walk goes on
    /// with the next entry (see `kvm_pgtable_visitor_fn_t`).
    KVM_PGTABLE_WALK_SHARED = 1 << 3,
    /// The walker is a vCPU's fault handler (with `KVM_PGTABLE_WALK_SHARED`
    /// on the fault path): a visitor's `-EAGAIN` ends the walk and is
    /// returned, and the vCPU resumes the guest.
    KVM_PGTABLE_WALK_HANDLE_FAULT = 1 << 4,
    /// Break-before-make without a TLB invalidation per broken entry. Where
    /// 6.12 leaves the range to the caller, `kvm_pgtable_stage2_map`
    /// invalidates it once when the walk ends (a deliberate deviation).
    KVM_PGTABLE_WALK_SKIP_BBM_TLBI = 1 << 5,
    /// No cache maintenance for new leaves: the caller did it.
    KVM_PGTABLE_WALK_SKIP_CMO = 1 << 6,
}

pub(crate) const WALK_LEAF: u32 = kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_LEAF as u32;
pub(crate) const WALK_TABLE_PRE: u32 = kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_TABLE_PRE as u32;
pub(crate) const WALK_TABLE_POST: u32 = kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_TABLE_POST as u32;
pub(crate) const WALK_SHARED: u32 = kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_SHARED as u32;
pub(crate) const WALK_HANDLE_FAULT: u32 =
    kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_HANDLE_FAULT as u32;
pub(crate) const WALK_SKIP_BBM_TLBI: u32 =
    kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_SKIP_BBM_TLBI as u32;
pub(crate) const WALK_SKIP_CMO: u32 = kvm_pgtable_walk_flags::KVM_PGTABLE_WALK_SKIP_CMO as u32;

/// `enum kvm_pgtable_stage2_flags`, the `flags` of
/// `__kvm_pgtable_stage2_init`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kvm_pgtable_stage2_flags {
    /// The hardware lacks FEAT_S2FWB (or it is not used): the library does
    /// cache maintenance for new cacheable mappings, as it always does.
    KVM_PGTABLE_S2_NOFWB = 1 << 0,
    /// A host identity map (pKVM): `kvm_pgtable_stage2_map` refuses a map
    /// whose IPA is not its physical address.
    KVM_PGTABLE_S2_IDMAP = 1 << 1,
}

pub(crate) const S2_IDMAP: u32 = kvm_pgtable_stage2_flags::KVM_PGTABLE_S2_IDMAP as u32;

/// The kernel's `struct kvm_pgtable_mm_ops`: memory management callbacks,
/// in the kernel's order and with its types. Addresses are virtual except
/// for `phys_to_virt`'s argument and `virt_to_phys`'s result.
///
/// A host sets the callbacks of the operations it calls, as the kernel's
/// hosts do (pKVM's host stage-2 has no `free_pages_exact`, as it is never
/// destroyed; its guests' tables no `free_unlinked_table`). Each call
/// checks those its operation may call before it changes anything, and
/// refuses with `-PGW_EINVAL` if one is NULL:
///
/// - every call: `phys_to_virt` and `virt_to_phys`;
/// - `__kvm_pgtable_stage2_init`: `zalloc_pages_exact` (and
///   `free_pages_exact`, if set, for a root beyond the output size);
/// - stage-2 map, `set_owner`, `pgw_stage2_fault_map` and
///   `pgw_bind_stage2`: `zalloc_page`, `get_page`, `put_page`,
///   `free_unlinked_table`;
/// - unmap: `put_page`, `page_count`;
/// - split and `create_unlinked`: `zalloc_page`, `get_page`, `put_page`;
/// - destroy: `put_page`, `free_pages_exact`;
/// - `kvm_pgtable_stage2_free_unlinked`: `put_page`;
/// - walks, `get_leaf` and attribute changes: nothing more;
/// - every hyp call: `zalloc_page`, `get_page`, `put_page`.
///
/// `dcache_clean_inval_poc` and `icache_inval_pou` may always be NULL,
/// where the hardware needs no cache maintenance (as in the kernel).
///
/// The library relies on the host keeping these promises (as the kernel
/// does): pages are zeroed, page-aligned, and start with a reference count
/// of 1; `put_page` frees a page when its count reaches zero; `phys_to_virt`
/// and `virt_to_phys` are inverse for every page handed out, and give the
/// same answers for as long as it stays handed out (the kernel converts a
/// root once, at initialisation; its walks, and pgwalk's, start from `pgd`
/// without converting it); the callbacks may be called from several
/// threads at once under shared walks.
///
/// Each call reads the callbacks it uses from this structure as it goes,
/// as the kernel does: it may change between calls, not during one (a
/// checked callback found NULL halfway through ends the call with
/// `-PGW_ENOTRECOVERABLE`, as does `free_pages_exact` missing where
/// initialisation must give back a root). `phys_to_virt` and
/// `virt_to_phys`, which every call needs, are read once, at its start.
#[repr(C)]
pub struct kvm_pgtable_mm_ops {
    /// A zeroed page of the table's granule (4, 16 or 64 KiB: as
    /// `mmu->vtcr`'s TG0 says, or for a hyp table as its initialisation
    /// chose), aligned to its size, or NULL when out of memory. `arg` is the
    /// memory cache the caller passed to the operation (`mc`), NULL when it
    /// passed none. One `mm_ops` serves tables of one granule and LPA2
    /// setting: the first initialisation with it decides (see
    /// `__kvm_pgtable_stage2_init` and `kvm_pgtable_hyp_init`).
    pub zalloc_page: Option<unsafe extern "C" fn(arg: *mut c_void) -> *mut c_void>,
    /// `size` bytes of zeroed, physically contiguous memory aligned to
    /// `size` (the root, possibly several concatenated pages).
    pub zalloc_pages_exact: Option<unsafe extern "C" fn(size: usize) -> *mut c_void>,
    /// Frees memory from `zalloc_pages_exact`.
    pub free_pages_exact: Option<unsafe extern "C" fn(addr: *mut c_void, size: usize)>,
    /// A table unlinked under shared walkers: free it with
    /// `kvm_pgtable_stage2_free_unlinked(mm_ops, addr, level)` once every
    /// walker that may read it has finished (an RCU grace period). `level`
    /// is that of the entry which linked the table.
    pub free_unlinked_table: Option<unsafe extern "C" fn(addr: *mut c_void, level: i8)>,
    /// Takes a reference on the page holding `addr`. For a reference an
    /// entry holds, `addr` is that entry's address (as the kernel's walker
    /// passes `ctx->ptep`), not the page's: find the page from any address
    /// in it.
    pub get_page: Option<unsafe extern "C" fn(addr: *mut c_void)>,
    /// Drops a reference on the page holding `addr`, freeing it at zero;
    /// `addr` is any address in the page, an entry's as for `get_page`.
    pub put_page: Option<unsafe extern "C" fn(addr: *mut c_void)>,
    /// The reference count of the page holding `addr`.
    pub page_count: Option<unsafe extern "C" fn(addr: *mut c_void) -> c_int>,
    /// Where the host reads and writes the page at physical `phys`.
    pub phys_to_virt: Option<unsafe extern "C" fn(phys: u64) -> *mut c_void>,
    /// The physical address of `addr`.
    pub virt_to_phys: Option<unsafe extern "C" fn(addr: *mut c_void) -> u64>,
    /// Cleans and invalidates `size` bytes of guest memory at `addr` to the
    /// point of coherency, before it is mapped cacheable. May be NULL.
    pub dcache_clean_inval_poc: Option<unsafe extern "C" fn(addr: *mut c_void, size: usize)>,
    /// Invalidates `size` bytes of the instruction cache at `addr` to the
    /// point of unification, before it is mapped executable. May be NULL.
    pub icache_inval_pou: Option<unsafe extern "C" fn(addr: *mut c_void, size: usize)>,
}

/// The stage-2 MMU of one VM: where the geometry comes from (`vtcr`), and
/// how TLB invalidation reaches the hypervisor.
///
/// The kernel's `struct kvm_s2_mmu` has many more fields; pgwalk needs
/// these. Hypervisors keep their own per-VM state in a structure that
/// embeds this one and find it with `container_of` in the callbacks.
///
/// The TLB callbacks stand for the kernel's hypervisor calls
/// `__kvm_tlb_flush_vmid_ipa`, `__kvm_tlb_flush_vmid_ipa_nsh` and
/// `__kvm_tlb_flush_vmid`, and its helper `kvm_tlb_flush_vmid_range`. All
/// but `tlb_flush_vmid_ipa_nsh` are required: initialisation fails with
/// `-PGW_EINVAL` when one is NULL. Later, each call checks those its
/// operation may call, as for `mm_ops`, and fails the same way before the
/// table is touched: map, unmap, `set_owner`, split, `create_unlinked`,
/// destroy and the fault path's map need all three; `relax_perms` needs
/// `tlb_flush_vmid_ipa` (its stand-in for the local one); lookups, walks,
/// `mkyoung`, `test_clear_young`, `wrprotect` (whose caller invalidates)
/// and `flush` call none. No invalidation is ever skipped silently. Like
/// `mm_ops`, the callbacks are read as they are used: they may change
/// between calls, not during one.
#[repr(C)]
pub struct kvm_s2_mmu {
    /// VTCR_EL2 for this VM: T0SZ, SL0 (and SL2), TG0, PS and DS give the
    /// geometry. Every granule (TG0 = 4, 16 or 64 KiB) is supported, with
    /// 52-bit output addresses for 64 KiB (PS = 0b110, FEAT_LPA) and LPA2
    /// for 4 and 16 KiB (DS = 1: 52-bit addresses, level -1 with SL2 for
    /// 4 KiB, and the leaves' shareability in SH0). A value the
    /// architecture (or pgwalk: no FEAT_TTST, IPA size <= PS) refuses is
    /// `-PGW_EINVAL` at initialisation.
    pub vtcr: u64,
    /// Written by initialisation: the root's physical address, for
    /// VTTBR_EL2.BADDR.
    pub pgd_phys: u64,
    /// Written by initialisation: the table this MMU translates with.
    pub pgt: *mut kvm_pgtable,
    /// Invalidates, in the inner-shareable domain, the stage-2 TLB entries
    /// for `ipa` (`__kvm_tlb_flush_vmid_ipa`): those of an entry at `level`,
    /// or of any level when `level` is `TLBI_TTL_UNKNOWN`.
    pub tlb_flush_vmid_ipa:
        Option<unsafe extern "C" fn(mmu: *mut kvm_s2_mmu, ipa: u64, level: c_int)>,
    /// Invalidates the stage-2 TLB entries, including cached table walks,
    /// for `size` bytes from `addr` (`kvm_tlb_flush_vmid_range`: by range
    /// with FEAT_TLBIRANGE, otherwise the whole VMID).
    pub tlb_flush_vmid_range:
        Option<unsafe extern "C" fn(mmu: *mut kvm_s2_mmu, addr: u64, size: u64)>,
    /// Invalidates every stage-2 TLB entry of this VMID (`__kvm_tlb_flush_vmid`).
    pub tlb_flush_vmid: Option<unsafe extern "C" fn(mmu: *mut kvm_s2_mmu)>,
    /// Optional: as `tlb_flush_vmid_ipa`, on this CPU only
    /// (`__kvm_tlb_flush_vmid_ipa_nsh`), after relaxing permissions for a
    /// faulting vCPU. NULL: `tlb_flush_vmid_ipa` is called instead.
    pub tlb_flush_vmid_ipa_nsh:
        Option<unsafe extern "C" fn(mmu: *mut kvm_s2_mmu, ipa: u64, level: c_int)>,
}

/// Whether `kvm_pgtable_stage2_map` must use pages only for
/// `addr..end` with `prot` (the kernel's `kvm_pgtable_force_pte_cb_t`).
pub type kvm_pgtable_force_pte_cb_t =
    Option<unsafe extern "C" fn(addr: u64, end: u64, prot: u64) -> bool>;

/// A stage-2 page table (Linux 6.12's `struct kvm_pgtable`, field for
/// field). The caller allocates it (statically, on the stack,
/// inside its VM structure); `__kvm_pgtable_stage2_init` fills it in and
/// `kvm_pgtable_stage2_destroy` frees what it points to.
///
/// Treat the fields as read-only after initialisation. Every call checks
/// that `ia_bits` and `start_level` still agree with `mmu->vtcr` and that
/// the callbacks it may call are present (`-PGW_EINVAL` otherwise; see
/// `struct kvm_pgtable_mm_ops`), but a `pgd` pointed
/// elsewhere cannot be detected.
///
/// Calls on one table do not nest. While a call on a table runs on a
/// thread, a call on the same table (this structure, or a copy with the same
/// `pgd`) made on that thread from one of its callbacks — a visitor, an
/// `mm_ops` callback, a TLB callback of `mmu`, `force_pte_cb` — is refused
/// with `-PGW_EDEADLK` before it reads the table, and changes nothing:
/// without that, an unmap, a block map or a destroy from a visitor would
/// free pages the walker is still reading. Functions that return no errno
/// do nothing (`kvm_pgtable_stage2_destroy`, `kvm_pgtable_stage2_mkyoung`),
/// `kvm_pgtable_stage2_test_clear_young` returns false, and
/// `kvm_pgtable_stage2_create_unlinked` returns `ERR_PTR(-PGW_EDEADLK)`. A
/// visitor that wants its own table changed records what to do and does it
/// after the walk returns. Calls on other tables are allowed from callbacks,
/// and calls from other threads are never refused: shared walkers on one
/// table run side by side under the read lock. Only the caller's lock keeps
/// an exclusive call on one thread from running beside a walk on another.
/// A freestanding build refuses such calls once the C side has said where
/// each CPU's slot is (`pgw_set_reentry_slot`); before that it lets them
/// through, as the kernel does.
#[repr(C)]
pub struct kvm_pgtable {
    /// Input address size, in bits.
    pub ia_bits: u32,
    /// Level at which the walk starts.
    pub start_level: i8,
    /// The root (virtual address); NULL before initialisation and after
    /// destruction.
    pub pgd: *mut kvm_pte_t,
    /// The host's memory callbacks.
    pub mm_ops: *mut kvm_pgtable_mm_ops,
    /// The MMU whose `vtcr` gave the geometry and whose callbacks receive
    /// TLB invalidations.
    pub mmu: *mut kvm_s2_mmu,
    /// `enum kvm_pgtable_stage2_flags` bits.
    pub flags: u32,
    /// Optional: forces page mappings for a map call's whole range.
    pub force_pte_cb: kvm_pgtable_force_pte_cb_t,
}

/// The kernel's `struct kvm_mmu_memory_cache`: opaque to the library, which
/// only hands the pointer to `zalloc_page`.
pub struct kvm_mmu_memory_cache {
    _opaque: [u8; 0],
}

/// What a legacy visitor sees (the kernel's `struct kvm_pgtable_visit_ctx`).
#[repr(C)]
pub struct kvm_pgtable_visit_ctx {
    /// The entry. A visitor may change it with plain stores (exclusive
    /// walks) or compare-and-swap (shared walks), keeping reference counts
    /// and TLBs itself, as kernel visitors do; the walker reads the entry
    /// again afterwards.
    pub ptep: *mut kvm_pte_t,
    /// The entry as the walker read it before the call.
    pub old: kvm_pte_t,
    /// The walker's `arg`.
    pub arg: *mut c_void,
    /// The table's memory callbacks.
    pub mm_ops: *mut kvm_pgtable_mm_ops,
    /// First address of the walk (page-aligned down).
    pub start: u64,
    /// The walk's current address, inside this entry's range.
    pub addr: u64,
    /// One past the last address of the walk (page-aligned up).
    pub end: u64,
    /// The entry's level.
    pub level: i8,
    /// The walker's flags.
    pub flags: u32,
}

/// A legacy visitor (the kernel's `kvm_pgtable_visitor_fn_t`). `visit` is
/// `KVM_PGTABLE_WALK_LEAF`, `KVM_PGTABLE_WALK_TABLE_PRE` or
/// `KVM_PGTABLE_WALK_TABLE_POST`. What its return value does depends on the
/// walker's flags:
///
/// | walker                          | 0        | -EAGAIN            | anything else  |
/// |---------------------------------|----------|--------------------|----------------|
/// | neither SHARED nor HANDLE_FAULT | continue | continue (ignored) | stop, returned |
/// | SHARED                          | continue | continue (ignored) | stop, returned |
/// | HANDLE_FAULT (with SHARED or not) | continue | stop, returned (resume the guest) | stop, returned |
///
/// as Linux 6.12's `kvm_pgtable_walk_continue`: "anything else" is
/// `-ENOENT`, any other negative value and any positive one, returned by
/// the walk as it is. A continue after a table entry's `TABLE_PRE` visit
/// descends into the table.
///
/// A visitor may not call the library on the table being walked: such a call
/// returns `-PGW_EDEADLK` and changes nothing (see `struct kvm_pgtable`).
///
/// `ctx` is valid for the visit only, and `const`: one context serves every
/// visit of a walk, its entry fields (`ptep`, `old`, `addr`, `level`)
/// written afresh each time and the walker's (`arg`, `mm_ops`, `start`,
/// `end`, `flags`) once, so a visitor that cast the `const` away and wrote
/// those would find its own values there at its next visit.
pub type kvm_pgtable_visitor_fn_t = Option<
    unsafe extern "C" fn(ctx: *const kvm_pgtable_visit_ctx, visit: kvm_pgtable_walk_flags) -> c_int,
>;

/// A legacy walker (the kernel's `struct kvm_pgtable_walker`).
#[repr(C)]
pub struct kvm_pgtable_walker {
    /// The visitor; required.
    pub cb: kvm_pgtable_visitor_fn_t,
    /// Passed to the visitor in `ctx->arg`.
    pub arg: *mut c_void,
    /// `enum kvm_pgtable_walk_flags` bits: which entries to visit, and the
    /// walker's kind (`SHARED`, `SHARED | HANDLE_FAULT`, `HANDLE_FAULT`, or
    /// neither).
    pub flags: u32,
}

// ---------------------------------------------------------------------------
// The typed API.
// ---------------------------------------------------------------------------

/// What handling a stage-2 fault came to (pgwalk's `FaultOutcome`). Every
/// value is non-zero, so it never collides with 0 or a `-errno`; test it
/// with a `switch`, never with `if (r)`. `pgw_fault_outcome_name` gives
/// each a stable name for traces.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, TryFromPrimitive, IntoPrimitive)]
pub enum pgw_fault_outcome {
    /// Nothing decided: the walk completed or a visitor stopped it
    /// (`pgw_walk_result::outcome` only; no fault-path call answers it).
    PGW_FAULT_CONTINUE = 1,
    /// Resume the guest without a change: another walker got there first;
    /// it faults again if it still needs to.
    PGW_FAULT_RETRY = 2,
    /// Emulated memory (MMIO): emulate the access. No pgwalk call answers
    /// it (the table alone cannot tell): it is the hypervisor's own, for a
    /// fault handler that returns one of these values.
    PGW_FAULT_EMULATE = 3,
    /// This call installed or relaxed the mapping.
    PGW_FAULT_FIXED = 5,
    /// The mapping already was what the fault needed.
    PGW_FAULT_SPURIOUS = 6,
}

/// The capability of a typed walker: what the caller holds, and so which
/// actions its visitor may report.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, TryFromPrimitive)]
pub enum pgw_capability {
    /// The write lock: `PGW_ACTION_CONTINUE`, `PGW_ACTION_STOP`.
    PGW_EXCLUSIVE = 1,
    /// A read lock, beside other walkers: also `PGW_ACTION_SKIP` and
    /// `PGW_ACTION_RETRY`.
    PGW_SHARED = 2,
    /// A read lock on a vCPU's fault path: `PGW_ACTION_CONTINUE`,
    /// `PGW_ACTION_STOP` and `PGW_ACTION_RESUME_GUEST`.
    PGW_HANDLES_FAULT = 3,
}

/// What a typed visitor did to the walk, reported in `pgw_visit.action`.
/// Never an errno, never zero. Reporting one the walker's capability does
/// not allow ends the walk with `-PGW_EACTION`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, TryFromPrimitive)]
pub enum pgw_action {
    /// Go on: descend into a table, or move to the next entry. The value
    /// `action` holds when the visitor is called.
    PGW_ACTION_CONTINUE = 1,
    /// Do not descend below this entry; move to the next. Shared only.
    PGW_ACTION_SKIP = 2,
    /// Read the entry again and visit it again. Shared only.
    PGW_ACTION_RETRY = 3,
    /// Stop and let the vCPU return to the guest, for `resume_reason`.
    /// Fault handler only.
    PGW_ACTION_RESUME_GUEST = 4,
    /// Stop the walk here; it returns 0 with `PGW_WALK_STOPPED`.
    PGW_ACTION_STOP = 5,
}

/// Why a typed fault-handler visitor resumed the guest
/// (`pgw_visit.resume_reason`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, TryFromPrimitive)]
pub enum pgw_resume_reason {
    /// Another walker changed the entry first.
    PGW_RESUME_RACED = 1,
    /// The entry is not the valid mapping the handler expected.
    PGW_RESUME_GONE = 2,
    /// The entry already holds what the handler would install.
    PGW_RESUME_SPURIOUS = 3,
}

/// Which visit a typed visitor is called for (`pgw_visit.kind`); the same
/// values as the matching walk flags.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pgw_visit_kind {
    /// A block, page or invalid entry.
    PGW_VISIT_LEAF = 1 << 0,
    /// A table entry, before its children.
    PGW_VISIT_TABLE_PRE = 1 << 1,
    /// A table entry, after its children.
    PGW_VISIT_TABLE_POST = 1 << 2,
}

/// How a typed walk that returned 0 ended.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pgw_walk_status {
    /// Every entry in the range was visited.
    PGW_WALK_COMPLETED = 1,
    /// A visitor reported `PGW_ACTION_STOP`.
    PGW_WALK_STOPPED = 2,
    /// A fault-handler visitor reported `PGW_ACTION_RESUME_GUEST`.
    PGW_WALK_RESUMED_GUEST = 3,
}

/// One visit of a typed walk. The library fills in everything above
/// `action`; the visitor reads it and reports through `action` (and
/// `resume_reason`), never through its return value. Fields that C may
/// write are plain integers, checked when read back.
#[repr(C)]
pub struct pgw_visit {
    /// The entry as the walker read it.
    pub old: kvm_pte_t,
    /// The walk's current address, inside this entry's range.
    pub addr: u64,
    /// First address this entry maps.
    pub entry_addr: u64,
    /// Bytes this entry maps.
    pub entry_size: u64,
    /// One past the last address of the walk.
    pub end: u64,
    /// The walker's `arg`.
    pub arg: *mut c_void,
    /// The entry's level.
    pub level: i8,
    /// Which visit this is: an `enum pgw_visit_kind` value.
    pub kind: u32,
    /// The walker's capability: an `enum pgw_capability` value.
    pub capability: u32,
    /// Out: an `enum pgw_action` value; `PGW_ACTION_CONTINUE` on entry.
    /// A value outside the enum ends the walk with `-PGW_EBADMSG`.
    pub action: u32,
    /// Out, with `PGW_ACTION_RESUME_GUEST`: an `enum pgw_resume_reason`
    /// value; 0 on entry (which, left so, counts as `PGW_RESUME_RACED`).
    pub resume_reason: u32,
}

/// A typed visitor. Its return value is an error of its own, unrelated to
/// the table: 0, or a negative errno that stops the walk and is returned by
/// `pgw_walk`. A positive return ends the walk with `-PGW_EBADMSG`. What
/// happened to the table goes in `visit->action`. Calls on the table being
/// walked return `-PGW_EDEADLK` (see `struct kvm_pgtable`).
pub type pgw_visitor_fn = Option<unsafe extern "C" fn(visit: *mut pgw_visit) -> c_int>;

/// A typed walker.
#[repr(C)]
pub struct pgw_walker {
    /// The visitor; required.
    pub cb: pgw_visitor_fn,
    /// Passed to the visitor in `visit->arg`.
    pub arg: *mut c_void,
    /// Which entries to visit: `KVM_PGTABLE_WALK_LEAF`, `_TABLE_PRE`,
    /// `_TABLE_POST` (and `_SKIP_BBM_TLBI`, `_SKIP_CMO`). `SHARED` and
    /// `HANDLE_FAULT` are refused with `-PGW_EINVAL`: the capability says
    /// that.
    pub flags: u32,
    /// An `enum pgw_capability` value; any other is `-PGW_EINVAL`.
    pub capability: u32,
}

/// How a typed walk ended.
#[repr(C)]
pub struct pgw_walk_result {
    /// How the walk ended (when `pgw_walk` returned 0).
    pub status: pgw_walk_status,
    /// With `PGW_WALK_RESUMED_GUEST`: what it means for the fault
    /// (`PGW_FAULT_RETRY` or `PGW_FAULT_SPURIOUS`); otherwise
    /// `PGW_FAULT_CONTINUE`.
    pub outcome: pgw_fault_outcome,
}

/// Entries a `struct pgw_leaf_run` holds at most.
pub const PGW_LEAF_RUN_MAX: usize = 64;

/// A run of leaf entries for `pgw_walk_leaf_runs`' visitor: consecutive
/// entries of one level, in address order, each `entry_size` bytes of
/// input addresses, as the walk read them.
#[repr(C)]
pub struct pgw_leaf_run {
    /// `count` entries, the first translating from `addr`: copies, read
    /// from the table with one load each (what a shared walk saw; the table
    /// may have changed since). Valid during the call only.
    pub ptes: *const kvm_pte_t,
    /// Entries at `ptes`: 1 to `PGW_LEAF_RUN_MAX`.
    pub count: u64,
    /// Input address of the first entry: aligned to `entry_size`, so a
    /// block the range starts inside begins before the walk's `addr`.
    pub addr: u64,
    /// Bytes each entry maps (the page size at the last level).
    pub entry_size: u64,
    /// What `pgw_walk_leaf_runs` was given as `arg`.
    pub arg: *mut c_void,
    /// The entries' level.
    pub level: i8,
}

/// `pgw_walk_leaf_runs`' visitor: 0 to go on, or a negative errno that
/// ends the walk and is returned by `pgw_walk_leaf_runs`; a positive return
/// ends it with `-PGW_EBADMSG`. Calls on the table being walked return
/// `-PGW_EDEADLK` (see `struct kvm_pgtable`).
pub type pgw_leaf_run_fn = Option<unsafe extern "C" fn(run: *const pgw_leaf_run) -> c_int>;

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalk::fault::FaultOutcome;
    use pgwalk::visit::WalkFlags;
    use pgwalk::Prot;

    #[test]
    fn prot_values_are_the_cores() {
        let pairs = [
            (KVM_PGTABLE_PROT_X, Prot::X),
            (KVM_PGTABLE_PROT_W, Prot::W),
            (KVM_PGTABLE_PROT_R, Prot::R),
            (KVM_PGTABLE_PROT_DEVICE, Prot::DEVICE),
            (KVM_PGTABLE_PROT_NORMAL_NC, Prot::NORMAL_NC),
            (KVM_PGTABLE_PROT_SW0, Prot::SW0),
            (KVM_PGTABLE_PROT_SW1, Prot::SW1),
            (KVM_PGTABLE_PROT_SW2, Prot::SW2),
            (KVM_PGTABLE_PROT_SW3, Prot::SW3),
            (KVM_PGTABLE_PROT_RW, Prot::RW),
            (KVM_PGTABLE_PROT_RWX, Prot::RWX),
            (PGW_PROT_PX, Prot::PX),
            (PGW_PROT_UX, Prot::UX),
        ];
        for (c, rust) in pairs {
            assert_eq!(c, rust.bits());
        }
        // Linux 6.12's layout, bit for bit.
        assert_eq!(
            [
                KVM_PGTABLE_PROT_X,
                KVM_PGTABLE_PROT_W,
                KVM_PGTABLE_PROT_R,
                KVM_PGTABLE_PROT_DEVICE,
                KVM_PGTABLE_PROT_NORMAL_NC
            ],
            [1, 2, 4, 8, 16]
        );
        let kvm = KVM_PGTABLE_PROT_RWX
            | KVM_PGTABLE_PROT_DEVICE
            | KVM_PGTABLE_PROT_NORMAL_NC
            | KVM_PGTABLE_PROT_SW0
            | KVM_PGTABLE_PROT_SW1
            | KVM_PGTABLE_PROT_SW2
            | KVM_PGTABLE_PROT_SW3;
        assert_eq!(kvm, Prot::KVM.bits());
        assert_eq!(kvm | PGW_PROT_PX | PGW_PROT_UX, Prot::all().bits());
    }

    #[test]
    fn the_descriptor_constants_are_the_cores() {
        use pgwalk::descriptor::{Descriptor, LeafAttrs};
        use pgwalk::geometry::Level;
        let leaf = |p: Prot| {
            Descriptor::leaf(
                pgwalk::PhysAddr(0x8000_0000),
                Level::LAST,
                LeafAttrs::from_prot(p).unwrap(),
            )
            .bits()
        };
        assert_eq!(
            leaf(Prot::R) & KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R,
            KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R
        );
        assert_eq!(
            leaf(Prot::W) & KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W,
            KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W
        );
        assert_eq!(
            leaf(Prot::R) & KVM_PTE_LEAF_ATTR_HI_S2_XN,
            KVM_PTE_LEAF_ATTR_HI_S2_XN
        );
        assert_eq!(leaf(Prot::R | Prot::X) & KVM_PTE_LEAF_ATTR_HI_S2_XN, 0);
        assert_ne!(leaf(Prot::R) & KVM_PTE_LEAF_ATTR_LO_S2_AF, 0);
        assert_eq!(
            (leaf(Prot::R) & KVM_PTE_LEAF_ATTR_LO_S2_SH) >> 8,
            KVM_PTE_LEAF_ATTR_LO_S2_SH_IS
        );
        assert_eq!(leaf(Prot::R) & KVM_PTE_ADDR_MASK, 0x8000_0000);
        assert_eq!(
            Descriptor::annotation(1).unwrap().bits() & KVM_INVALID_PTE_OWNER_MASK,
            1 << 2
        );
        let locked = Descriptor::from_bits(KVM_INVALID_PTE_LOCKED);
        assert!(locked.is_locked());
    }

    #[test]
    fn tlbi_ttl_unknown_is_int_max() {
        assert_eq!(TLBI_TTL_UNKNOWN, c_int::MAX);
    }

    #[test]
    fn walk_flag_values_are_the_kernels() {
        use kvm_pgtable_walk_flags::*;
        assert_eq!(KVM_PGTABLE_WALK_LEAF as u32, WalkFlags::LEAF.bits());
        assert_eq!(
            KVM_PGTABLE_WALK_TABLE_PRE as u32,
            WalkFlags::TABLE_PRE.bits()
        );
        assert_eq!(
            KVM_PGTABLE_WALK_TABLE_POST as u32,
            WalkFlags::TABLE_POST.bits()
        );
        assert_eq!(KVM_PGTABLE_WALK_SHARED as u32, 1 << 3);
        assert_eq!(KVM_PGTABLE_WALK_HANDLE_FAULT as u32, 1 << 4);
        assert_eq!(
            KVM_PGTABLE_WALK_SKIP_BBM_TLBI as u32,
            WalkFlags::SKIP_BBM_TLBI.bits()
        );
        assert_eq!(KVM_PGTABLE_WALK_SKIP_CMO as u32, WalkFlags::SKIP_CMO.bits());
    }

    #[test]
    fn fault_outcomes_are_the_cores() {
        for o in FaultOutcome::ALL {
            let v: u32 = o.into();
            assert_ne!(v, 0);
            let c = pgw_fault_outcome::try_from(v).unwrap();
            assert_eq!(u32::from(c), v);
        }
        assert!(pgw_fault_outcome::try_from(0).is_err());
        assert!(pgw_fault_outcome::try_from(7).is_err());
    }
}
