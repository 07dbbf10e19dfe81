//! The seed (fixed for CI, chosen by an environment variable otherwise)
//! and the random generator every scenario draws from.

/// The seed CI runs with.
pub(crate) const DEFAULT_SEED: u64 = 0x5067_7761_6c6b_0006;
/// Environment variable selecting another seed.
pub(crate) const SEED_ENV: &str = "PGWALK_CONFORMANCE_SEED";

pub(crate) fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
                None => s.replace('_', "").parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{SEED_ENV}={s:?} is not a number: {e}"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

pub(crate) fn rerun_hint(seed: u64) -> String {
    format!("{SEED_ENV}={seed:#x} cargo test -p pgwalk-conformance --test conformance")
}

/// SplitMix64: tiny, fast, and good enough to spread addresses; the test
/// only needs reproducibility, not cryptographic quality.
#[derive(Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An independent stream for a sub-task, so adding a scenario does not
    /// reshuffle every other one.
    pub(crate) fn fork(&self, salt: u64) -> Rng {
        let mut r = Rng(self.0 ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0); the modulo bias is irrelevant
    /// for address picking.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    pub(crate) fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }

    pub(crate) fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub(crate) fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}
