//! A last-level table handed to a visitor whole: for read-only visitors
//! that go through many leaves (scans, counts, copies to another
//! language), one loop over the entries instead of one visit each.

use core::marker::PhantomData;

use crate::addr::Ipa;
use crate::capability::Capability;
use crate::descriptor::{Descriptor, Pte};
use crate::sync::AtomicU64;

/// The entries of a last-level table that a walk covers, in address order,
/// from [`VisitCtx::take_leaf_table`](super::VisitCtx::take_leaf_table).
///
/// Read-only: every [`get`](Self::get) is one load of the live entry, with
/// the ordering the capability's walker uses, so under
/// [`Shared`](crate::Shared) another walker may change an entry between two
/// reads of it, as it may between two visits.
pub struct LeafTable<'a, C: Capability, D: Pte = Descriptor> {
    entries: &'a [AtomicU64],
    addr: u64,
    entry_size: u64,
    _cap: PhantomData<(C, D)>,
}

impl<'a, C: Capability, D: Pte> LeafTable<'a, C, D> {
    pub(crate) fn new(entries: &'a [AtomicU64], addr: u64, entry_size: u64) -> Self {
        LeafTable {
            entries,
            addr,
            entry_size,
            _cap: PhantomData,
        }
    }

    /// How many entries the walk covers here (at least one).
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never: a walk covers at least one entry of a table it visits. (For
    /// symmetry with [`len`](Self::len).)
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// First address the entry `0` translates (page-aligned: an unaligned
    /// walk's first page starts before its address).
    #[inline(always)]
    pub fn addr(&self) -> Ipa {
        Ipa(self.addr)
    }

    /// Bytes each entry maps: the granule's page size.
    #[inline(always)]
    pub fn entry_size(&self) -> u64 {
        self.entry_size
    }

    /// Entry `i`, read now.
    ///
    /// # Panics
    ///
    /// If `i` is not below [`len`](Self::len).
    #[inline(always)]
    pub fn get(&self, i: usize) -> D {
        D::from_bits(self.entries[i].load(C::LOAD))
    }

    /// Reads entries `from..` into `out`, as many as both have room for
    /// (one load each, raw bits), and returns how many: for copying a
    /// table's entries out in chunks, say to hand them to another
    /// language.
    ///
    /// # Panics
    ///
    /// If `from` is beyond [`len`](Self::len).
    #[inline(always)]
    pub fn read_bits(&self, from: usize, out: &mut [u64]) -> usize {
        let src = &self.entries[from..];
        let n = src.len().min(out.len());
        for (o, e) in out[..n].iter_mut().zip(&src[..n]) {
            *o = e.load(C::LOAD);
        }
        n
    }

    /// Every entry, read as the iterator reaches it.
    #[inline(always)]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = D> + '_ {
        self.entries.iter().map(|e| D::from_bits(e.load(C::LOAD)))
    }
}
