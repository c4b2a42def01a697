//! A fixed-size blocked Bloom filter of the BizTokens one bill pull has stored (SPEC R6: a
//! token seen twice in one pull is merged, never counted twice). Its memory is the same for
//! a day of ten details or ten million, so a pull's memory does not grow with the day; a
//! "maybe seen" answer is only a suspicion that [`super::finish`] confirms against the store,
//! so a false positive costs a little work and never merges two tokens.

use std::hash::{DefaultHasher, Hash, Hasher};

/// 2^21 words of 64 bits: 16 MiB, touched lazily (zeroed pages are mapped on first write).
const WORDS: usize = 1 << 21;
/// One block = one 64-byte cache line: a lookup costs one memory access.
const BLOCK_WORDS: usize = 8;
const HASHES: u32 = 6;

pub struct Bloom {
    bits: Vec<u64>,
}

impl Bloom {
    pub fn new() -> Self {
        Bloom { bits: vec![0; WORDS] }
    }

    fn hash(token: &str) -> (usize, u64) {
        let mut h = DefaultHasher::new();
        token.hash(&mut h);
        let x = h.finish();
        let block = ((x >> 32) as usize % (WORDS / BLOCK_WORDS)) * BLOCK_WORDS;
        // The in-block positions come from a second mix of the hash (9 bits each).
        (block, x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
    }

    /// Adds `token`; returns true when it was certainly not in the filter before.
    pub fn insert(&mut self, token: &str) -> bool {
        let (block, mut y) = Self::hash(token);
        let mut fresh = false;
        for _ in 0..HASHES {
            let bit = (y & 511) as usize;
            y >>= 9;
            let (w, m) = (block + bit / 64, 1u64 << (bit % 64));
            fresh |= self.bits[w] & m == 0;
            self.bits[w] |= m;
        }
        fresh
    }
}

impl Default for Bloom {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r6_a_token_inserted_twice_is_suspected_and_false_positives_are_rare() {
        let mut b = Bloom::new();
        assert!(b.insert("tok-a"));
        assert!(!b.insert("tok-a"), "the second sighting is never missed");
        let fresh = (0..200_000).filter(|i| b.insert(&format!("tok-{i:08}"))).count();
        assert!(fresh >= 199_990, "at most a handful of false suspicions: {}", 200_000 - fresh);
    }
}
