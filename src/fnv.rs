//! Hashes for values kept on disk and for maps keyed by integers: FNV-1a (stable across Rust
//! versions, so a row's identity, an idempotency key or a simulated answer never changes with
//! the toolchain) and a one-multiply hasher for the import's large integer maps.
//!
//! At the top level because three stages use it: `input` (row identities), `state`
//! (idempotency keys) and `provider::sim` (answers decided by number).

/// For maps keyed by one integer, millions of them per import: one folded multiply instead of
/// SipHash. The keys come from the user's own list, so there is no adversary to resist.
pub type IntegerKeys = std::hash::BuildHasherDefault<FoldedMultiply>;

#[derive(Default)]
pub struct FoldedMultiply(u64);

impl std::hash::Hasher for FoldedMultiply {
    fn finish(&self) -> u64 {
        let product = u128::from(self.0) * 0x9e37_79b9_7f4a_7c15;
        (product as u64) ^ ((product >> 64) as u64)
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else still hashes, just more slowly.
        for &b in bytes {
            self.0 = fnv_step(self.0, b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

pub fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
}

/// FNV-1a, 64 bits: a hash that is stable across Rust versions, for values stored on disk.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(FNV_OFFSET, fnv_step)
}
