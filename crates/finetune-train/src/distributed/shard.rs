//! Which samples of a global micro-batch a rank trains on.
//!
//! The run's step plan ([`StepOrder`](crate::order::StepOrder)) is made with the *global* batch
//! size, `world_size × --batch-size` (transformers' `per_device_train_batch_size` times the
//! processes), so the data order is the one a single process with that batch size sees. Each
//! micro-batch is cut into `world_size` contiguous pieces of `ceil(len / world_size)` samples:
//! a full one gives every rank exactly `--batch-size` samples; an epoch's last, short one gives
//! the later ranks fewer, or none.

/// Rank `rank`'s piece of `batch` (perhaps empty) out of `world` ranks.
pub fn shard(batch: &[usize], rank: usize, world: usize) -> &[usize] {
    let world = world.max(1);
    let piece = batch.len().div_ceil(world);
    let start = (rank * piece).min(batch.len());
    let end = (start + piece).min(batch.len());
    &batch[start..end]
}

#[cfg(test)]
mod tests {
    use super::shard;

    #[test]
    fn pieces_cover_the_batch_once_in_order() {
        for len in 0..20 {
            for world in 1..6 {
                let batch: Vec<usize> = (100..100 + len).collect();
                let joined: Vec<usize> = (0..world)
                    .flat_map(|r| shard(&batch, r, world).to_vec())
                    .collect();
                assert_eq!(joined, batch, "len {len}, world {world}");
            }
        }
    }

    #[test]
    fn a_full_global_batch_gives_each_rank_the_per_device_batch() {
        let batch: Vec<usize> = (0..12).collect();
        for r in 0..3 {
            assert_eq!(shard(&batch, r, 3), &batch[4 * r..4 * r + 4]);
        }
        let short: Vec<usize> = (0..5).collect();
        assert_eq!(shard(&short, 0, 3), &[0, 1]);
        assert_eq!(shard(&short, 2, 3), &[4]);
        assert!(shard(&[7], 1, 2).is_empty());
    }
}
