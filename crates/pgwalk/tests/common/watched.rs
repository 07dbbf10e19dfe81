//! A `HeapMemory` host whose calls a test watches: the watcher sees each
//! call that matters to the tests (TLB invalidations, cache maintenance,
//! pages freed) before it is forwarded, and may log it, hold it, or panic
//! as a broken host would.

use std::ptr::NonNull;

use pgwalk::geometry::Level;
use pgwalk::host::HeapMemory;
use pgwalk::{Ipa, MemoryOps, PhysAddr};

/// A host call, as a [`Watch`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `tlb_flush_vmid_ipa`.
    TlbiIpa(Ipa, Level),
    /// `tlb_flush_vmid_range`.
    TlbiRange(Ipa, u64),
    /// `tlb_flush_vmid`.
    TlbiVmid,
    /// `dcache_clean_inval_poc`.
    Dcache(PhysAddr, u64),
    /// `free_unlinked_table`.
    FreeUnlinked(PhysAddr),
    /// `put_page` (one) or `put_pages` (`n`) of the page at this address.
    Put(PhysAddr, usize),
    /// `get_page_at` or `put_page_at`: a reference of the table page at
    /// this address, for the entry at this host address (followed by the
    /// `Put` it is, for `put_page_at`).
    Entry(PhysAddr, NonNull<u64>),
}

/// What a test does with the calls of its [`Watched`] host.
pub trait Watch {
    /// Called before `call` is forwarded to `mm`.
    fn see(&self, mm: &HeapMemory, call: Call);
}

/// A `HeapMemory` whose calls `watch` sees first.
#[derive(Clone)]
pub struct Watched<W> {
    pub mm: HeapMemory,
    pub watch: W,
}

impl<W: Watch> Watched<W> {
    fn see(&self, call: Call) {
        self.watch.see(&self.mm, call);
    }
}

// SAFETY: every method forwards to a HeapMemory, which upholds the
// contract; the watcher runs before the call and changes nothing of the
// host's (it may delay the call, or panic before it is made, as a host
// callback may).
unsafe impl<W: Watch> MemoryOps for Watched<W> {
    type PagePool = ();

    fn zalloc_page(&self, cache: &mut ()) -> Option<PhysAddr> {
        self.mm.zalloc_page(cache)
    }
    fn zalloc_pages_exact(&self, size: usize) -> Option<PhysAddr> {
        self.mm.zalloc_pages_exact(size)
    }
    unsafe fn free_pages_exact(&self, pa: PhysAddr, size: usize) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.free_pages_exact(pa, size) }
    }
    unsafe fn free_unlinked_table(&self, table: PhysAddr, level: Level) {
        self.see(Call::FreeUnlinked(table));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.free_unlinked_table(table, level) }
    }
    unsafe fn get_page(&self, pa: PhysAddr) {
        // SAFETY: forwarded with the caller's promise.
        unsafe { self.mm.get_page(pa) }
    }
    unsafe fn get_pages(&self, pa: PhysAddr, n: usize) {
        // SAFETY: forwarded with the caller's promise.
        unsafe { self.mm.get_pages(pa, n) }
    }
    unsafe fn get_page_at(&self, pa: PhysAddr, entry: NonNull<u64>) {
        self.see(Call::Entry(pa, entry));
        // SAFETY: forwarded with the caller's promise.
        unsafe { self.mm.get_page_at(pa, entry) }
    }
    unsafe fn put_page_at(&self, pa: PhysAddr, entry: NonNull<u64>) {
        self.see(Call::Entry(pa, entry));
        // SAFETY: forwarded with the caller's guarantees, through this
        // host's `put_page`, which the watcher sees too.
        unsafe { self.put_page(pa) }
    }
    unsafe fn put_page(&self, pa: PhysAddr) {
        self.see(Call::Put(pa, 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.put_page(pa) }
    }
    unsafe fn put_pages(&self, pa: PhysAddr, n: usize) {
        self.see(Call::Put(pa, n));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.mm.put_pages(pa, n) }
    }
    fn page_count(&self, pa: PhysAddr) -> usize {
        self.mm.page_count(pa)
    }
    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        self.mm.phys_to_virt(pa)
    }
    fn dcache_clean_inval_poc(&self, pa: PhysAddr, size: u64) {
        self.see(Call::Dcache(pa, size));
        self.mm.dcache_clean_inval_poc(pa, size)
    }
    fn icache_inval_pou(&self, pa: PhysAddr, size: u64) {
        self.mm.icache_inval_pou(pa, size)
    }
    fn shared_walk<R>(&self, walk: impl FnOnce() -> R) -> R {
        self.mm.shared_walk(walk)
    }
    fn retry_limit(&self) -> u32 {
        self.mm.retry_limit()
    }
    fn tlb_flush_vmid_ipa(&self, ipa: Ipa, level: Level) {
        self.see(Call::TlbiIpa(ipa, level));
        self.mm.tlb_flush_vmid_ipa(ipa, level)
    }
    fn tlb_flush_vmid_range(&self, ipa: Ipa, size: u64) {
        self.see(Call::TlbiRange(ipa, size));
        self.mm.tlb_flush_vmid_range(ipa, size)
    }
    fn tlb_flush_vmid(&self) {
        self.see(Call::TlbiVmid);
        self.mm.tlb_flush_vmid()
    }
}
