//! Seeds derived from (seed, epoch, index): a sample's augmentation and an epoch's shuffle are
//! functions of these numbers only, never of which thread ran first.

use finetune_core::Rng;

/// Domain tags so the shuffle stream and the per-sample streams never coincide.
const SHUFFLE: u64 = 0x5348_5546_464c_4521;
const SAMPLE: u64 = 0x5341_4d50_4c45_2121;

fn mix(a: u64, b: u64) -> u64 {
    Rng::seed_from_u64(a ^ Rng::seed_from_u64(b).next_u64()).next_u64()
}

/// The generator that shuffles (or buckets) epoch `epoch`.
pub fn epoch_rng(seed: u64, epoch: u64) -> Rng {
    Rng::seed_from_u64(mix(mix(seed, SHUFFLE), epoch))
}

/// The generator of sample `index` (its position in the dataset) in epoch `epoch`.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> Rng {
    Rng::seed_from_u64(mix(mix(mix(seed, SAMPLE), epoch), index))
}
