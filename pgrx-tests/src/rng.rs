//! A small seeded generator, so that a fuzz run can be replayed from its seed.

/// A small deterministic generator (xorshift64*), so a failing case can be replayed from the seed
/// a test prints.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `MIGRATIONS_TEST_SEED` or the clock; prints the seed.
    pub fn from_env(what: &str) -> Rng {
        let seed = std::env::var("MIGRATIONS_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: MIGRATIONS_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `range`.
    pub fn within(&mut self, range: std::ops::RangeInclusive<usize>) -> usize {
        range.start() + (self.next_u64() as usize) % (range.end() - range.start() + 1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.within(0..=items.len() - 1)]
    }
}
