//! RoBERTa's position ids, as transformers' `create_position_ids_from_input_ids`: padding
//! tokens sit at `padding_idx`, every other token at `padding_idx + 1 + (its index among the
//! row's non-padding tokens)`.

use candle_core::Tensor;
use finetune_core::Result;

/// Position ids `[B, T]` (u32) for token ids `[B, T]` (u32) padded with `padding_idx`.
pub fn position_ids(ids: &Tensor, padding_idx: u32) -> Result<Tensor> {
    let rows = ids.to_vec2::<u32>()?;
    let (b, t) = ids.dims2()?;
    let mut out = Vec::with_capacity(b * t);
    for row in rows {
        let mut seen = 0u32;
        for id in row {
            if id == padding_idx {
                out.push(padding_idx);
            } else {
                seen += 1;
                out.push(padding_idx + seen);
            }
        }
    }
    Ok(Tensor::from_vec(out, (b, t), ids.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn padding_keeps_padding_idx_and_the_rest_count_from_it() -> Result<()> {
        // Right padding, and a pad token in the middle as transformers counts it: skipped.
        let ids = Tensor::new(&[[0u32, 7, 8, 2, 1, 1], [0, 7, 1, 8, 2, 1]], &Device::Cpu)?;
        let p = position_ids(&ids, 1)?.to_vec2::<u32>()?;
        assert_eq!(p, [[2, 3, 4, 5, 1, 1], [2, 3, 1, 4, 5, 1]]);
        Ok(())
    }
}
