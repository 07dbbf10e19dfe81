//! Building the tables of one configuration: a fixed prologue, then random
//! operations, each recorded in the model and probed around.

use pgwalk::descriptor::Descriptor;
use pgwalk::fault::TableOutcome;
use pgwalk::geometry::Level;
use pgwalk::host::{check_invariants, HeapMemory};
use pgwalk::{Error, Ipa, PhysAddr, Prot, Stage2};
use pgwalk_conformance::{TABLE_WINDOW_PA, TABLE_WINDOW_SIZE};

use crate::configs::Config;
use crate::model::{model_at, ModelLeaf, ModelOp};
use crate::rng::Rng;
use crate::MAX_PROBE_BITS;

/// The tables built for one configuration, with the probe list and the
/// model of what they should map.
pub(crate) struct Built {
    pub(crate) table: Stage2<HeapMemory>,
    pub(crate) log: Vec<ModelOp>,
    pub(crate) probes: Vec<u64>,
    pub(crate) ops: usize,
}

/// Builds the tables for `cfg` with a random sequence of operations and
/// picks probe addresses around everything the operations touched.
pub(crate) struct Builder<'a> {
    cfg: Config,
    rng: Rng,
    table: Stage2<HeapMemory>,
    log: Vec<ModelOp>,
    probes: Vec<u64>,
    /// Ranges operations touched, so later operations can overlap them.
    hot: Vec<(u64, u64)>,
    ops: usize,
    failures: &'a mut Vec<String>,
    /// The granule's page, its level-2 block and a larger unit (see
    /// `Sizes`), the last two no larger than an eighth and a quarter of
    /// the input space, so that small spaces still hold several.
    page: u64,
    block: u64,
    big: u64,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(cfg: Config, rng: Rng, failures: &'a mut Vec<String>) -> Builder<'a> {
        let sizes = cfg.sizes();
        let pages = (TABLE_WINDOW_SIZE / sizes.page) as usize;
        let mm = HeapMemory::with_format_at(cfg.format, TABLE_WINDOW_PA, pages);
        let table = Stage2::with_geometry(cfg.geometry(), mm)
            .unwrap_or_else(|e| panic!("{cfg}: cannot create the table: {e}"));
        let limit = 1u64 << cfg.ia;
        Builder {
            cfg,
            rng,
            table,
            log: Vec::new(),
            probes: Vec::new(),
            hot: Vec::new(),
            ops: 0,
            failures,
            page: sizes.page,
            block: sizes.block.min(limit / 8),
            big: sizes.big.min(limit / 4),
        }
    }

    fn limit(&self) -> u64 {
        1 << self.cfg.ia
    }

    fn fail(&mut self, what: String) {
        self.failures.push(format!("{}: {what}", self.cfg));
    }

    fn leaf(&self, ipa: u64) -> (Descriptor, Level) {
        self.table
            .shared()
            .get_leaf(Ipa(ipa))
            .unwrap_or_else(|e| panic!("get_leaf({ipa:#x}): {e}"))
    }

    /// The range of the valid leaf holding `ipa`, if any.
    fn leaf_span(&self, ipa: u64) -> Option<(u64, u64)> {
        let (d, level) = self.leaf(ipa);
        if !d.is_valid() {
            return None;
        }
        let size = self.table.geometry().entry_size(level);
        let lo = ipa & !(size - 1);
        Some((lo, lo + size))
    }

    /// `lo..hi` widened to whole leaves at both ends, as attribute changes
    /// apply to every leaf they touch.
    fn widen(&self, lo: u64, hi: u64) -> (u64, u64) {
        let lo = self.leaf_span(lo).map_or(lo, |s| s.0.min(lo));
        let hi = self.leaf_span(hi - 1).map_or(hi, |s| s.1.max(hi));
        (lo, hi)
    }

    /// Probes around `lo..hi`: both ends, a point inside, just outside.
    fn probe_around(&mut self, lo: u64, hi: u64) {
        let (limit, page) = (self.limit(), self.page);
        let offset = self.rng.below(page);
        self.probes.push(lo + offset);
        self.probes.push((hi - page) + self.rng.below(page));
        self.probes.push(lo + self.rng.below(hi - lo));
        if lo >= page {
            self.probes.push(lo - page + self.rng.below(page));
        }
        if hi < limit {
            self.probes.push(hi + self.rng.below(page));
        }
    }

    fn record(&mut self, op: ModelOp) {
        let (lo, hi) = op.range();
        self.probe_around(lo, hi);
        self.hot.push((lo, hi));
        self.log.push(op);
    }

    /// A range of one of several shapes: a few pages, level-2 blocks, a
    /// span that starts and ends mid-block (pages, blocks, pages), or the
    /// larger unit. Half the time it overlaps something already touched.
    fn pick_range(&mut self) -> (u64, u64) {
        let (limit, page, block, big) = (self.limit(), self.page, self.block, self.big);
        let per_block = block / page;
        let shape = self.rng.below(10);
        let (align, size) = match shape {
            0..=3 => (page, self.rng.range(1, 8) * page),
            4..=6 => (block, self.rng.range(1, 3) * block),
            7..=8 => (
                page,
                self.rng.range(1, 2) * block + self.rng.range(1, per_block - 1) * page,
            ),
            _ => (big, big),
        };
        let base = if !self.hot.is_empty() && self.rng.chance(1, 2) {
            let (lo, hi) = self.rng.pick(&self.hot);
            let from = lo.saturating_sub(4 * block);
            from + self.rng.below(hi - from)
        } else if self.rng.chance(1, 8) {
            // The top of the input space: the last root entries.
            limit - size
        } else {
            self.rng.below(limit)
        };
        let mut ipa = base & !(align - 1);
        if shape == 7 || shape == 8 {
            // Start mid-block so the range needs pages, then blocks.
            ipa = (ipa & !(block - 1)) + self.rng.range(1, per_block - 1) * page;
        }
        if ipa + size > limit {
            ipa = (limit - size) & !(align - 1);
        }
        (ipa, size)
    }

    /// A physical address for `size` bytes at `ipa`: usually congruent to
    /// the IPA modulo the larger unit so blocks can be used, sometimes any
    /// page; anywhere up to PS, above 48 bits too where PS is 52.
    fn pick_pa(&mut self, ipa: u64, size: u64) -> u64 {
        let (big, page) = (self.cfg.sizes().big, self.page);
        let max = 1u64 << self.cfg.ps;
        if self.rng.chance(2, 3) {
            let span = big.max(size.next_power_of_two());
            let slots = (max - span) / big;
            let pa = self.rng.below(slots + 1) * big + (ipa & (big - 1));
            if pa + size <= max {
                return pa;
            }
        }
        self.rng.below((max - size) / page + 1) * page
    }

    fn pick_prot(&mut self) -> Prot {
        let mut prot = self.rng.pick(&[Prot::empty(), Prot::R, Prot::W, Prot::RW]);
        match self.rng.below(10) {
            0..=1 => prot |= Prot::DEVICE,
            2..=3 => prot |= Prot::NORMAL_NC,
            // Execute permissions only exist for Normal WB here.
            _ => prot |= self.rng.pick(&[Prot::empty(), Prot::X, Prot::PX, Prot::UX]),
        }
        if self.rng.chance(1, 4) {
            prot |= Prot::from_bits_retain(self.rng.below(16) << 55);
        }
        prot
    }

    fn map(&mut self, ipa: u64, size: u64, pa: u64, prot: Prot) {
        self.ops += 1;
        let r = self
            .table
            .exclusive()
            .map(Ipa(ipa), size, PhysAddr(pa), prot, &mut ());
        match r {
            Ok(()) => self.record(ModelOp::Map {
                lo: ipa,
                hi: ipa + size,
                leaf: ModelLeaf {
                    delta: pa.wrapping_sub(ipa),
                    prot,
                    young: true,
                },
            }),
            Err(e) => self.fail(format!("map({ipa:#x}, {size:#x}, {pa:#x}, {prot:?}): {e}")),
        }
    }

    fn random_map(&mut self) {
        let (ipa, size) = self.pick_range();
        let pa = self.pick_pa(ipa, size);
        let prot = self.pick_prot();
        self.map(ipa, size, pa, prot);
    }

    /// A leaf-sized map through the fault path: installs unless the same
    /// mapping (up to permissions) is there already.
    fn fault_map(&mut self) {
        self.ops += 1;
        // A block-sized fault maps one level-2 block only where level 2
        // exists and the space holds real blocks.
        let blocks_here = self.cfg.start <= 2 && self.block == self.cfg.sizes().block;
        let (size, level) = if self.rng.chance(1, 2) || !blocks_here {
            (self.page, 3)
        } else {
            (self.block, 2)
        };
        let (ipa, _) = self.pick_range();
        let ipa = ipa & !(size - 1);
        let pa = if self.rng.chance(1, 2) {
            // Often the same output as what is there, to hit "spurious".
            match model_at(&self.log, ipa) {
                Some(l) => ipa.wrapping_add(l.delta) & !(size - 1),
                None => self.pick_pa(ipa, size) & !(size - 1),
            }
        } else {
            self.pick_pa(ipa, size) & !(size - 1)
        };
        if pa + size > 1 << self.cfg.ps {
            return;
        }
        let prot = if self.rng.chance(1, 2) {
            // What is there with another write permission: "spurious" when
            // the rest matches. Relaxing may have made a Device or
            // non-cacheable leaf executable, which a new mapping cannot ask.
            model_at(&self.log, ipa).map_or(Prot::RW, |l| {
                let p = l.prot ^ Prot::W;
                if p.intersects(Prot::DEVICE | Prot::NORMAL_NC) {
                    p - (Prot::X | Prot::PX | Prot::UX)
                } else {
                    p
                }
            })
        } else {
            self.pick_prot()
        };
        let new = ModelLeaf {
            delta: pa.wrapping_sub(ipa),
            prot,
            young: true,
        };
        // pgwalk leaves an entry alone when it already maps the same
        // output with the same attributes apart from S2AP and XN, at the
        // fault's level; an entry that is a table one level down is always
        // replaced, and a block above the fault's level is split, the
        // fault's range getting the requested mapping.
        let (d, found) = self.leaf(ipa);
        let same_beyond_perms = |old: ModelLeaf| {
            let perms = Prot::RW | Prot::X | Prot::PX | Prot::UX;
            old.young && old.delta == new.delta && (old.prot - perms) == (new.prot - perms)
        };
        let spurious = d.is_valid()
            && found.get() == level
            && model_at(&self.log, ipa).is_some_and(same_beyond_perms);
        let r = self
            .table
            .fault_handler()
            .map(Ipa(ipa), size, PhysAddr(pa), prot, &mut ());
        let expected = if spurious {
            TableOutcome::Spurious
        } else {
            TableOutcome::Fixed
        };
        match r {
            Ok(outcome) if outcome == expected => {
                if spurious {
                    self.probe_around(ipa, ipa + size);
                } else {
                    self.record(ModelOp::Map {
                        lo: ipa,
                        hi: ipa + size,
                        leaf: new,
                    });
                }
            }
            Ok(outcome) => self.fail(format!(
                "fault-path map({ipa:#x}, {size:#x}, {pa:#x}, {prot:?}) over {d:?} ({found:?}): \
                 {} where {} was expected",
                outcome.name(),
                expected.name()
            )),
            Err(e) => self.fail(format!("fault-path map({ipa:#x}): {e}")),
        }
    }

    fn unmap(&mut self) {
        self.ops += 1;
        let (ipa, size) = self.pick_range();
        // pgwalk refuses a boundary inside a block (or block annotation).
        let g = *self.table.geometry();
        let inside_block = |b: &Self, addr: u64| {
            if addr >= b.limit() {
                return false;
            }
            let (d, level) = b.leaf(addr);
            d.is_counted() && !level.is_last() && addr & (g.entry_size(level) - 1) != 0
        };
        let refused = inside_block(&*self, ipa) || inside_block(&*self, ipa + size);
        match self.table.exclusive().unmap(Ipa(ipa), size) {
            Ok(()) if !refused => self.record(ModelOp::Clear {
                lo: ipa,
                hi: ipa + size,
            }),
            Err(Error::SplitsBlock { .. }) if refused => self.probe_around(ipa, ipa + size),
            other => self.fail(format!(
                "unmap({ipa:#x}, {size:#x}) returned {other:?}, refusal expected: {refused}"
            )),
        }
    }

    fn annotate(&mut self) {
        self.ops += 1;
        let (ipa, size) = self.pick_range();
        // Owner 0 (the table's own: "clear") often, since it empties tables.
        let owner = if self.rng.chance(1, 3) {
            0
        } else {
            self.rng.range(1, 255) as u32
        };
        match self
            .table
            .exclusive()
            .annotate(Ipa(ipa), size, owner, &mut ())
        {
            Ok(()) => self.record(ModelOp::Clear {
                lo: ipa,
                hi: ipa + size,
            }),
            Err(e) => self.fail(format!("annotate({ipa:#x}, {size:#x}, {owner}): {e}")),
        }
    }

    fn split(&mut self) {
        self.ops += 1;
        let (ipa, size) = self.pick_range();
        // Splitting a whole 1 GiB block costs 513 table pages; keep most
        // splits small so the image stays small.
        let size = if size >= self.big && self.rng.chance(3, 4) {
            self.block
        } else {
            size
        };
        match self.table.exclusive().split(Ipa(ipa), size, &mut ()) {
            // Translation must not change: nothing for the model.
            Ok(()) => self.probe_around(ipa, ipa + size),
            Err(e) => self.fail(format!("split({ipa:#x}, {size:#x}): {e}")),
        }
    }

    fn wrprotect(&mut self) {
        self.ops += 1;
        let (ipa, size) = self.pick_range();
        let (lo, hi) = self.widen(ipa, ipa + size);
        let done = self
            .table
            .shared()
            .wrprotect(Ipa(ipa), size)
            .map(|f| f.flush());
        match done {
            Ok(()) => self.record(ModelOp::Wrprotect { lo, hi }),
            Err(e) => self.fail(format!("wrprotect({ipa:#x}, {size:#x}): {e}")),
        }
    }

    fn mkold(&mut self) {
        self.ops += 1;
        let (ipa, size) = self.pick_range();
        let (lo, hi) = self.widen(ipa, ipa + size);
        match self.table.shared().clear_young(Ipa(ipa), size) {
            Ok(_) => self.record(ModelOp::Young {
                lo,
                hi,
                young: false,
            }),
            Err(e) => self.fail(format!("test_clear_young({ipa:#x}, {size:#x}): {e}")),
        }
    }

    /// The leaf at one address, the way a vCPU's fault names it.
    fn pick_fault_address(&mut self) -> u64 {
        let (ipa, size) = self.pick_range();
        ipa + (self.rng.below(size) & !(self.page - 1))
    }

    fn mkyoung(&mut self) {
        self.ops += 1;
        let ipa = self.pick_fault_address();
        let span = self.leaf_span(ipa);
        let r = if self.rng.chance(1, 2) {
            self.table.shared().mkyoung(Ipa(ipa)).map(|_| ())
        } else {
            self.table.fault_handler().mkyoung(Ipa(ipa)).map(|_| ())
        };
        match (r, span) {
            (Ok(()), Some((lo, hi))) => self.record(ModelOp::Young {
                lo,
                hi,
                young: true,
            }),
            (Ok(()), None) => self.probe_around(ipa, ipa + self.page),
            (Err(e), _) => self.fail(format!("mkyoung({ipa:#x}): {e}")),
        }
    }

    fn relax(&mut self) {
        self.ops += 1;
        let ipa = self.pick_fault_address();
        let prot = self
            .rng
            .pick(&[Prot::R, Prot::W, Prot::RW, Prot::X, Prot::R | Prot::PX]);
        let span = self.leaf_span(ipa);
        let r = if self.rng.chance(1, 2) {
            self.table.shared().relax_perms(Ipa(ipa), prot)
        } else {
            self.table
                .fault_handler()
                .relax_perms(Ipa(ipa), prot)
                .map(|_| ())
        };
        match (r, span) {
            (Ok(()), Some((lo, hi))) => self.record(ModelOp::Relax { lo, hi, prot }),
            (Ok(()), None) => self.probe_around(ipa, ipa + self.page),
            (Err(e), _) => self.fail(format!("relax_perms({ipa:#x}, {prot:?}): {e}")),
        }
    }

    /// An output address beyond PS must be refused, leaving the table as
    /// it was (QEMU would report an address size fault for such a leaf).
    fn map_beyond_ps(&mut self) {
        self.ops += 1;
        let (ipa, _) = self.pick_range();
        let pa = 1u64 << self.cfg.ps;
        let before = model_at(&self.log, ipa);
        let r = self
            .table
            .exclusive()
            .map(Ipa(ipa), self.page, PhysAddr(pa), Prot::RW, &mut ());
        if !matches!(r, Err(Error::OutputTooLarge { .. })) {
            self.fail(format!(
                "map({ipa:#x}) to {pa:#x}, beyond PS, returned {r:?}"
            ));
        }
        debug_assert_eq!(before, model_at(&self.log, ipa));
        self.probe_around(ipa, ipa + self.page);
    }

    /// A fixed prologue that every configuration gets (the larger unit,
    /// blocks and page leaves, each S2AP value and memory type, an old
    /// leaf), then a random sequence of operations.
    pub(crate) fn run(mut self, random_ops: usize) -> Built {
        let (limit, page, big) = (self.limit(), self.page, self.big);
        // Small spaces: the prologue's 24 blocks must fit.
        let block = self.block.min(limit / 32);
        // The larger unit (a 1 GiB block with 4 KiB), somewhere in the
        // space, then blocks and pages of every permission and memory type
        // near it.
        let gb = self.rng.below(limit / big) * big;
        let pa = self.pick_pa(gb, big);
        self.map(gb, big, pa, Prot::RWX);
        let base = self.rng.below((limit - 24 * block) / block + 1) * block;
        let perms = [Prot::empty(), Prot::R, Prot::W, Prot::RW];
        let mems = [Prot::empty(), Prot::NORMAL_NC, Prot::DEVICE];
        for (i, (&perm, &mem)) in perms
            .iter()
            .flat_map(|p| mems.iter().map(move |m| (p, m)))
            .enumerate()
        {
            let i = i as u64;
            let pa = self.pick_pa(0, block) & !(block - 1);
            self.map(base + i * 2 * block, block, pa, perm | mem);
            let at = base + (i * 2 + 1) * block + self.rng.below(block / page) * page;
            let pa = self.pick_pa(0, page);
            self.map(at, page, pa, perm | mem);
        }
        self.mkold_at(base, block);
        self.mkold_at(base + 3 * block, block);

        // The choice of operations gets a stream of its own.
        let mut rng = self.rng.fork(0x6f70);
        for _ in 0..random_ops {
            match rng.below(100) {
                0..=24 => self.random_map(),
                25..=34 => self.unmap(),
                35..=44 => self.wrprotect(),
                45..=54 => self.mkold(),
                55..=59 => self.mkyoung(),
                60..=69 => self.relax(),
                70..=76 => self.split(),
                77..=83 => self.annotate(),
                84..=95 => self.fault_map(),
                _ => self.map_beyond_ps(),
            }
        }
        self.global_probes();

        // Fault-path maps hand replaced subtrees to the epoch collector;
        // the invariants count pages, so wait for those frees. The other
        // worker thread pins the epoch too, so give it a few rounds.
        let mm = self.table.mm().clone();
        if !(0..20).any(|_| mm.quiesce()) {
            self.fail(format!("{} deferred frees never ran", mm.pending_frees()));
        }
        if let Err(e) = check_invariants(&mut self.table) {
            self.fail(format!("table invariants broken: {e}"));
        }
        Built {
            table: self.table,
            log: self.log,
            probes: self.probes,
            ops: self.ops,
        }
    }

    fn mkold_at(&mut self, ipa: u64, size: u64) {
        let (lo, hi) = self.widen(ipa, ipa + size);
        match self.table.shared().clear_young(Ipa(ipa), size) {
            Ok(_) => self.record(ModelOp::Young {
                lo,
                hi,
                young: false,
            }),
            Err(e) => self.fail(format!("test_clear_young({ipa:#x}): {e}")),
        }
    }

    /// Probes not tied to an operation: anywhere in the space (mostly
    /// holes, at every level), in every page of a concatenated root, and
    /// above the input size.
    fn global_probes(&mut self) {
        let limit = self.limit();
        for _ in 0..160 {
            let p = self.rng.below(limit);
            self.probes.push(p);
        }
        let g = *self.table.geometry();
        let per_root_page = (limit / g.root_pages() as u64).max(self.page);
        for page in 0..g.root_pages() as u64 {
            for _ in 0..4 {
                let p = page * per_root_page + self.rng.below(per_root_page);
                self.probes.push(p);
            }
        }
        if u32::from(self.cfg.ia) < MAX_PROBE_BITS {
            for _ in 0..16 {
                let p = limit + self.rng.below((1 << MAX_PROBE_BITS) - limit);
                self.probes.push(p);
            }
            self.probes.push(limit);
        }
    }
}
