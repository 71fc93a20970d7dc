//! Seeds derived from (seed, epoch, index): a sample's augmentation is a function of these
//! numbers only, never of which thread ran first.

use finetune_core::Rng;

/// A domain tag, so the per-sample streams coincide with no other stream of the same seed.
const SAMPLE: u64 = 0x5341_4d50_4c45_2121;

fn mix(a: u64, b: u64) -> u64 {
    Rng::seed_from_u64(a ^ Rng::seed_from_u64(b).next_u64()).next_u64()
}

/// A domain tag for the per-batch streams (batch-level augmentation: mixup, cutmix).
const BATCH: u64 = 0x4241_5443_4821_2121;

/// The generator of the batch of samples `indices` (positions in the dataset, in batch order)
/// in epoch `epoch`: a function of these numbers only, so a rebuilt batch draws the same.
pub fn batch_rng(seed: u64, epoch: u64, indices: &[usize]) -> Rng {
    let start = mix(mix(seed, BATCH), epoch);
    let key = indices
        .iter()
        .fold(mix(start, indices.len() as u64), |acc, &i| {
            mix(acc, i as u64)
        });
    Rng::seed_from_u64(key)
}

/// The generator of sample `index` (its position in the dataset) in epoch `epoch`.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> Rng {
    Rng::seed_from_u64(mix(mix(mix(seed, SAMPLE), epoch), index))
}

#[cfg(test)]
mod tests {
    use super::{batch_rng, sample_rng};

    #[test]
    fn each_sample_has_its_own_stream_of_seed_epoch_and_index() {
        let first = |s, e, i| sample_rng(s, e, i).next_u64();
        let draws: std::collections::BTreeSet<u64> = (0..100).map(|i| first(3, 0, i)).collect();
        assert_eq!(draws.len(), 100, "one stream per index");
        assert_eq!(first(3, 0, 7), first(3, 0, 7));
        assert_ne!(first(3, 0, 7), first(3, 1, 7), "another epoch");
        assert_ne!(first(3, 0, 7), first(4, 0, 7), "another seed");
    }

    #[test]
    fn each_batch_has_its_own_stream_of_seed_epoch_and_samples() {
        let first = |s, e, i: &[usize]| batch_rng(s, e, i).next_u64();
        assert_eq!(first(3, 0, &[4, 9]), first(3, 0, &[4, 9]));
        assert_ne!(first(3, 0, &[4, 9]), first(3, 0, &[9, 4]), "another order");
        assert_ne!(
            first(3, 0, &[4, 9]),
            first(3, 0, &[4, 9, 1]),
            "another batch"
        );
        assert_ne!(first(3, 0, &[4, 9]), first(3, 1, &[4, 9]), "another epoch");
        assert_ne!(first(3, 0, &[4, 9]), first(5, 0, &[4, 9]), "another seed");
        assert_ne!(
            first(3, 0, &[7]),
            sample_rng(3, 0, 7).next_u64(),
            "not a sample's"
        );
    }
}
