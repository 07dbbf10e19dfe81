//! Unmapping a range of an EL2 table (`kvm_pgtable_hyp_unmap`).
//!
//! As Linux's `hyp_unmap_walker`: leaves are cleared one by one, each with
//! its TLB flush and its table page's count dropped, child tables left
//! empty are unlinked (their walks flushed) and freed on the way back up,
//! and the walk stops at the first invalid entry or at a block that maps
//! beyond the range. What was unmapped, and where and why it stopped, is
//! the answer.
//!
//! Two deliberate differences from Linux 6.12:
//!
//! - Linux checks only that a block does not extend past the range's end,
//!   so a range that starts inside a block unmaps the whole block,
//!   including the memory before the range. pgwalk stops there too: a
//!   block that begins before the range maps beyond it as well.
//! - When Linux stops, the tables it emptied on the way down stay linked
//!   (their post-order visit never comes). pgwalk frees them: no empty
//!   table is left behind.

use super::map::free_if_empty;
use super::{HypHandle, HypTlb};
use crate::addr::Va;
use crate::capability::{Action, Unfinished, Walked};
use crate::descriptor::HypDescriptor;
use crate::error::Error;
use crate::geometry::Level;
use crate::memory::MemoryOps;
use crate::stage2::check_range;
use crate::walk::{Span, VisitKind, WalkFlags};

/// Why an unmap of a hyp table stopped before the end of its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HypUnmapStop {
    /// Nothing is mapped at `va`: the entry at `level` is invalid.
    Hole {
        /// The first address not unmapped.
        va: Va,
        /// The level of the invalid entry.
        level: Level,
    },
    /// The block at `level` that maps `va` extends beyond the range (before
    /// its start or past its end): unmapping it would unmap memory the
    /// caller did not name.
    BlockBeyondRange {
        /// The first address not unmapped.
        va: Va,
        /// The level of the block.
        level: Level,
    },
}

/// What an unmap of a hyp table did: the bytes it unmapped (a prefix of the
/// range: everything from its start up to where it stopped), and whether it
/// stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "an unmap of a hyp table stops at the first hole or straddling block: check it got to the end"]
pub struct HypUnmapped {
    bytes: u64,
    stopped: Option<HypUnmapStop>,
}

impl HypUnmapped {
    /// Bytes unmapped, counted by the leaves cleared (what
    /// `kvm_pgtable_hyp_unmap` returns).
    pub const fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Where and why the unmap stopped, if before the end of its range.
    pub const fn stopped(&self) -> Option<HypUnmapStop> {
        self.stopped
    }

    /// Whether the whole range was unmapped.
    pub const fn is_complete(&self) -> bool {
        self.stopped.is_none()
    }
}

/// How the unmap visitor ends the walk early.
enum Stop {
    At(HypUnmapStop),
    Walk(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Walk(e)
    }
}

impl<M: MemoryOps + HypTlb> HypHandle<'_, M> {
    /// Removes the mappings of `size` bytes at `va`, leaf by leaf, each
    /// with its [`HypTlb::flush_va`], and frees the table pages left empty
    /// (each unlinked with [`HypTlb::flush_va_walks`]).
    ///
    /// The unmap stops at the first address where nothing is mapped, or
    /// where a block extends beyond the range, and says so in the answer
    /// (see [`HypUnmapped`]); what it unmapped until then stays unmapped.
    /// A `va` or `size` that is not page-aligned, an empty range, or one
    /// beyond the VA size is refused before anything changes.
    pub fn unmap(&mut self, va: Va, size: u64) -> Result<HypUnmapped, Error> {
        let range = check_range(self.geometry(), crate::Ipa(va.get()), size)?;
        let mut bytes = 0;
        let flags = WalkFlags::LEAF | WalkFlags::TABLE_POST;
        let walked = self.run_span::<Stop, _>(Span::Checked(range), flags, |ctx| {
            match ctx.kind() {
                VisitKind::Leaf => {
                    let old = ctx.old();
                    if !old.is_valid() {
                        let at = HypUnmapStop::Hole {
                            va: ctx.va(),
                            level: ctx.level(),
                        };
                        return Err(Unfinished::Stop(Stop::At(at)));
                    }
                    if !ctx.covers_entry() {
                        let at = HypUnmapStop::BlockBeyondRange {
                            va: ctx.va(),
                            level: ctx.level(),
                        };
                        return Err(Unfinished::Stop(Stop::At(at)));
                    }
                    ctx.set(HypDescriptor::INVALID);
                    bytes += ctx.entry_size();
                }
                VisitKind::TablePost => free_if_empty(ctx),
                VisitKind::TablePre => {}
            }
            Ok(Action::Continue)
        });
        let stopped = match walked {
            Ok(Walked::Completed) => None,
            Err(Stop::At(at)) => Some(at),
            Err(Stop::Walk(e)) => return Err(e),
        };
        if stopped.is_some() && bytes > 0 {
            // The walk left without visiting the tables above the stop on
            // their way back up; some may have emptied.
            self.prune_empty(va, bytes);
        }
        Ok(HypUnmapped { bytes, stopped })
    }
}
