//! What the ranks agree on besides the gradients: the starting weights (rank 0's), the run's
//! settings (the same on every rank, or no run), a flag raised on any rank (an interrupt), and
//! the dropout streams a checkpoint records (one per rank).

use super::Collective;
use candle_core::Tensor;
use finetune_core::{Error, ParamStore, Result};

/// Gives every rank rank 0's value of every floating-point tensor of `store` (as PyTorch's
/// DDP broadcasts the module's state from rank 0 when it wraps it). Integer tensors (index
/// buffers) are built the same way everywhere and stay as they are.
pub fn broadcast_weights(coll: &dyn Collective, store: &ParamStore) -> Result<()> {
    if coll.world_size() == 1 {
        return Ok(());
    }
    for (name, t) in store.tensors() {
        if !t.dtype().is_float() {
            continue;
        }
        let mut bytes = match coll.is_writer() {
            true => f32_bytes(&t)?,
            false => Vec::new(),
        };
        coll.broadcast(0, &mut bytes)?;
        if !coll.is_writer() {
            let values: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let root = Tensor::from_vec(values, t.shape(), t.device())?.to_dtype(t.dtype())?;
            store.set(&name, &root)?;
        }
    }
    Ok(())
}

fn f32_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let values = t
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// Refuses to train unless every rank resolved the same settings (`settings`: a JSON object,
/// e.g. the run's `run_config.json`): every rank gets one error naming the ranks and keys that
/// differ from rank 0's.
pub fn check_same_settings(coll: &dyn Collective, settings: &serde_json::Value) -> Result<()> {
    let all = coll.all_gather_bytes(settings.to_string().as_bytes())?;
    let parse = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap_or_default();
    let root = parse(&all[0]);
    let differ: Vec<String> = all
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(rank, bytes)| {
            let keys = differing_keys(&root, &parse(bytes));
            (!keys.is_empty()).then(|| format!("rank {rank} ({})", keys.join(", ")))
        })
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(Error::config(format!(
        "the ranks were started with different settings: {} differ from rank 0's; every rank \
         must run the same command",
        differ.join("; ")
    )))
}

/// The top-level keys whose values differ between two JSON objects (or `<all>`).
fn differing_keys(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return match a == b {
            true => Vec::new(),
            false => vec!["<all>".into()],
        };
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| k.to_string())
        .collect()
}

/// Whether `mine` is true on any rank (an interrupt, say).
pub fn any(coll: &dyn Collective, mine: bool) -> Result<bool> {
    let mut flag = [f32::from(mine)];
    coll.all_reduce_sum(&mut flag)?;
    Ok(flag[0] > 0.0)
}

/// Every rank's dropout stream state (`mine` on this rank), in rank order.
pub fn gather_rngs(coll: &dyn Collective, mine: Option<[u64; 4]>) -> Result<Vec<[u64; 4]>> {
    let bytes: Vec<u8> = mine
        .map(|s| s.iter().flat_map(|w| w.to_le_bytes()).collect())
        .unwrap_or_default();
    let all = coll.all_gather_bytes(&bytes)?;
    Ok(all
        .iter()
        .filter(|b| b.len() == 32)
        .map(|b| std::array::from_fn(|i| u64::from_le_bytes(std::array::from_fn(|j| b[i * 8 + j]))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::differing_keys;
    use serde_json::json;

    #[test]
    fn differing_keys_names_changed_added_and_removed_keys() {
        let a = json!({"model": "x", "lr": 1, "seed": 3});
        let b = json!({"model": "x", "lr": 2, "extra": true});
        assert_eq!(differing_keys(&a, &b), vec!["extra", "lr", "seed"]);
        assert!(differing_keys(&a, &a).is_empty());
    }
}
