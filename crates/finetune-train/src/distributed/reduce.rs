//! The gradients' all-reduce: every trainable parameter's gradient, flattened into `f32`
//! buckets of about [`BUCKET_BYTES`] in the store's order, summed over the ranks bucket by
//! bucket, and cut back into tensors of the gradient's shape, dtype and device.
//!
//! Each rank weights its micro-batches by their share of the *global* step's samples, so the
//! sum is the gradient of the mean loss over the global batch, as one process would have
//! computed it (up to the order of the float additions). A parameter with no gradient on a
//! rank (the loss did not reach it there) counts as zero; it has a gradient after the reduce
//! when it had one on any rank — the presence flags travel in a bucket of their own.
//!
//! The recorded backward hands every gradient over at once, so the buckets are reduced after
//! the step's last backward, not overlapped with it.

use super::Collective;
use candle_core::{DType, Device, Shape, Tensor};
use finetune_core::{Grads, ParamStore, Result};

/// The size of one all-reduce, in bytes of `f32` (PyTorch DDP's default bucket is 25 MiB).
pub const BUCKET_BYTES: usize = 25 << 20;

/// One trainable parameter's place in the flat gradient.
struct Slot {
    name: String,
    shape: Shape,
    device: Device,
}

/// Sums `grads` over every rank (see the module doc); every rank gets the same result.
pub fn all_reduce_grads(coll: &dyn Collective, store: &ParamStore, grads: &Grads) -> Result<Grads> {
    let slots: Vec<Slot> = store
        .trainable_vars()
        .into_iter()
        .map(|(name, var)| Slot {
            shape: var.shape().clone(),
            device: var.device().clone(),
            name,
        })
        .collect();
    let mut present: Vec<f32> = slots
        .iter()
        .map(|s| f32::from(grads.get(&s.name).is_some()))
        .collect();
    coll.all_reduce_sum(&mut present)?;
    let mut out = Grads::new();
    let (mut send, mut flat) = (Vec::new(), Vec::new());
    for bucket in buckets(&slots, BUCKET_BYTES / 4) {
        flatten_into(&mut send, &slots[bucket.clone()], grads)?;
        flat.resize(send.len(), 0.0);
        coll.all_reduce_sum_into(&send, &mut flat)?;
        let mut at = 0;
        for (slot, seen) in slots[bucket.clone()].iter().zip(&present[bucket]) {
            let n = slot.shape.elem_count();
            if *seen > 0.0 {
                let dtype = grads.get(&slot.name).map_or(DType::F32, |g| g.dtype());
                let t = Tensor::from_slice(&flat[at..at + n], slot.shape.clone(), &slot.device)?;
                out.insert(slot.name.clone(), t.to_dtype(dtype)?);
            }
            at += n;
        }
    }
    Ok(out)
}

/// Consecutive runs of slots holding at least `elems` elements each (the last may hold
/// fewer; a parameter larger than a bucket is a bucket of its own).
fn buckets(slots: &[Slot], elems: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut filled) = (0, 0);
    for (i, slot) in slots.iter().enumerate() {
        filled += slot.shape.elem_count();
        if filled >= elems {
            out.push(start..i + 1);
            (start, filled) = (i + 1, 0);
        }
    }
    if start < slots.len() {
        out.push(start..slots.len());
    }
    out
}

/// `flat` becomes the slots' gradients end to end as `f32`, zeros where a slot has none (one
/// buffer reused for every bucket).
fn flatten_into(flat: &mut Vec<f32>, slots: &[Slot], grads: &Grads) -> Result<()> {
    flat.clear();
    for slot in slots {
        match grads.get(&slot.name) {
            Some(g) => extend_with(flat, &g.to_dtype(DType::F32)?)?,
            None => flat.resize(flat.len() + slot.shape.elem_count(), 0.0),
        }
    }
    Ok(())
}

/// Appends an `f32` tensor's values in row-major order: straight from the storage when it is
/// a contiguous CPU tensor (one copy), else through `to_vec1`.
fn extend_with(flat: &mut Vec<f32>, t: &Tensor) -> Result<()> {
    if finetune_core::with_host_f32(t, |v| flat.extend_from_slice(v)).is_none() {
        flat.extend(t.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(n: usize) -> Slot {
        Slot {
            name: String::new(),
            shape: Shape::from(n),
            device: Device::Cpu,
        }
    }

    #[test]
    fn buckets_cover_every_slot_once_in_order() {
        let slots: Vec<Slot> = [3, 5, 1, 9, 2, 2].into_iter().map(slot).collect();
        let b = buckets(&slots, 6);
        assert_eq!(b, vec![0..2, 2..4, 4..6]);
        assert_eq!(buckets(&slots, 100), vec![0..6]);
        assert_eq!(buckets(&slots, 1).len(), 6);
        assert!(buckets(&[], 4).is_empty());
    }

    #[test]
    fn flattening_reads_views_in_row_major_order() {
        let t = Tensor::arange(0f32, 12.0, &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let want = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Contiguous with an offset (a narrowed row range), and a transposed (strided) view.
        for view in [t.narrow(0, 1, 2).unwrap(), t.t().unwrap(), t.clone()] {
            let mut flat = vec![-1.0];
            extend_with(&mut flat, &view).unwrap();
            assert_eq!(flat[1..], want(&view)[..]);
            assert_eq!(flat[0], -1.0);
        }
    }
}
