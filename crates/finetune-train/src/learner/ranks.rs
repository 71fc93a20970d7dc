//! A distributed run's part of the learner ([`crate::distributed`]): joining the other ranks
//! at the start (the same settings, rank 0's weights), each rank's own dropout stream and its
//! place in a checkpoint, and an interrupt on any rank.

use super::Learner;
use crate::checkpoint::TrainerState;
use crate::distributed::sync;
use finetune_core::{Error, Result, Rng, TrainModel};
use std::path::Path;

impl<M: TrainModel + ?Sized> Learner<'_, M> {
    /// Checks that every rank runs the same settings, then gives every rank rank 0's weights.
    pub(super) fn join_ranks(&self) -> Result<()> {
        let coll = self.collective.as_ref();
        if coll.world_size() == 1 {
            return Ok(());
        }
        let settings = match self.run_files.first() {
            Some((_, bytes)) => serde_json::from_slice(bytes).unwrap_or_default(),
            None => serde_json::to_value(&self.config).unwrap_or_default(),
        };
        sync::check_same_settings(coll, &settings)?;
        sync::broadcast_weights(coll, self.model.store())
    }

    /// This rank's dropout stream of a fresh run: a function of the seed and the rank (rank 0
    /// draws what a single process draws).
    pub(super) fn rank_rng(&self, seed: u64) -> Rng {
        let rank = self.collective.rank() as u64;
        let offset = rank.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Rng::seed_from_u64(seed.wrapping_add(0x5eed).wrapping_add(offset))
    }

    /// This rank's dropout stream in checkpoint `dir`; refuses a checkpoint of another
    /// number of ranks.
    pub(super) fn resumed_rng(&self, dir: &Path, state: &TrainerState) -> Result<Option<[u64; 4]>> {
        let world = self.collective.world_size();
        let saved = state.world_size.unwrap_or(1);
        if saved != world {
            return Err(Error::config(format!(
                "{}: this checkpoint was written by a run of {saved} rank(s); resume it with \
                 {saved} (this run has {world})",
                dir.display()
            )));
        }
        Ok(match world {
            1 => state.model_rng,
            _ => state.rank_rngs.get(self.collective.rank()).copied(),
        })
    }

    /// Records every rank's dropout stream in `state` before a checkpoint (every rank takes
    /// part; rank 0's state is the one saved).
    pub(super) fn record_rngs(&self, state: &mut TrainerState) -> Result<()> {
        let mine = self.model.rng_state().map(|r| r.state());
        state.model_rng = mine;
        let world = self.collective.world_size();
        if world > 1 {
            state.rank_rngs = sync::gather_rngs(self.collective.as_ref(), mine)?;
            state.world_size = Some(world);
        }
        Ok(())
    }

    /// Whether any rank was interrupted (Ctrl-C) by the end of this step.
    pub(super) fn any_interrupted(&self, mine: bool) -> Result<bool> {
        match self.collective.world_size() {
            1 => Ok(mine),
            _ => sync::any(self.collective.as_ref(), mine),
        }
    }
}
