//! A small seeded pseudo-random generator for property-style host tests (as clap-validator's
//! `src/tests/rng.rs` seeds its own): the same seed gives the same run on every machine, so a
//! failure names its seed and replays exactly. SplitMix64 (Steele, Lea, Flood 2014): 64-bit
//! state, full period, good enough to pick transport moves and block sizes.

/// A seeded SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    /// The state: advanced by the golden-ratio increment on every draw.
    state: u64,
}

impl Rng {
    /// A generator that always produces the same sequence for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi` (`lo <= hi`), uniform up to a negligible bias.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    /// `true` with probability `percent` / 100.
    pub fn percent(&mut self, percent: u32) -> bool {
        self.next_u64() % 100 < u64::from(percent)
    }

    /// A number in `[lo, hi)`.
    pub fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_reference_values() {
        // SplitMix64's published first outputs for seed 1234567.
        let mut rng = Rng::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    }

    #[test]
    fn ranges_stay_inside_and_cover_their_ends() {
        let mut rng = Rng::new(42);
        let draws: Vec<i64> = (0..2000).map(|_| rng.range(-3, 3)).collect();
        assert!(draws.iter().all(|d| (-3..=3).contains(d)));
        assert!(draws.contains(&-3) && draws.contains(&3));
        assert!((0..2000).map(|_| rng.float(1.5, 2.5)).all(|f| (1.5..2.5).contains(&f)));
        let hits = (0..10_000).filter(|_| rng.percent(10)).count();
        assert!((800..1200).contains(&hits), "10 % of 10000 draws, got {hits}");
    }
}
