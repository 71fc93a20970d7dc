//! Deterministic train/validation splits from a seed (`--validation-split 0.1 --seed 42`), and
//! the grouped variant (`--group-column movie_name`) that keeps rows sharing a group on one side,
//! so near-duplicates (snippets of one film) never straddle train and validation.
//!
//! Both return sorted indices `(train, validation)`; the validation side gets
//! `round(n * fraction)` rows (grouped: whole groups, in a seeded order, until it has at least
//! that many).

use finetune_core::{Error, Result, Rng};
use std::collections::HashMap;

fn check(n: usize, fraction: f64) -> Result<()> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::config(format!(
            "validation fraction must be in (0, 1), got {fraction}"
        )));
    }
    if n < 2 {
        return Err(Error::config(format!("cannot split {n} rows")));
    }
    Ok(())
}

/// A seeded random split of `n` rows.
pub fn random_split(n: usize, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    check(n, fraction)?;
    let k = ((n as f64 * fraction).round() as usize).clamp(1, n - 1);
    let mut order: Vec<usize> = (0..n).collect();
    Rng::seed_from_u64(seed).shuffle(&mut order);
    let mut val = order[..k].to_vec();
    let mut train = order[k..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    Ok((train, val))
}

/// A seeded split that never separates rows with equal `groups[i]`.
pub fn grouped_split<S: AsRef<str>>(
    groups: &[S],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let n = groups.len();
    check(n, fraction)?;
    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(g.as_ref()).or_default().push(i);
    }
    if members.len() < 2 {
        return Err(Error::config(format!(
            "cannot split by group: all {n} rows share one group"
        )));
    }
    // Sorted first so the seeded order does not depend on hash-map iteration.
    let mut keys: Vec<&str> = members.keys().copied().collect();
    keys.sort_unstable();
    Rng::seed_from_u64(seed).shuffle(&mut keys);
    let target = ((n as f64 * fraction).round() as usize).max(1);
    let mut val = Vec::new();
    let mut taken = 0;
    for k in &keys[..keys.len() - 1] {
        if val.len() >= target {
            break;
        }
        val.extend_from_slice(&members[k]);
        taken += 1;
    }
    let mut train: Vec<usize> = keys[taken..]
        .iter()
        .flat_map(|k| members[k].iter().copied())
        .collect();
    val.sort_unstable();
    train.sort_unstable();
    Ok((train, val))
}
