//! Dynamic loss scaling for `--fp16`, as PyTorch's `torch.amp.GradScaler` with its defaults:
//! the loss is multiplied by the scale before the backward, so that small gradients survive
//! the f16 products; the gradients are divided by it again before clipping and the update. A
//! step whose loss or gradients are not finite is an overflow: it is skipped and the scale
//! halved; after [`GROWTH_INTERVAL`] finite steps in a row the scale doubles. The state is
//! part of every checkpoint, so a resumed run scales as the uninterrupted one.

use serde::{Deserialize, Serialize};

/// The first scale (PyTorch's `init_scale`, 2¹⁶).
pub const INIT_SCALE: f64 = 65536.0;
/// The scale's factor after [`GROWTH_INTERVAL`] finite steps (`growth_factor`).
pub const GROWTH_FACTOR: f64 = 2.0;
/// The scale's factor after an overflow (`backoff_factor`).
pub const BACKOFF_FACTOR: f64 = 0.5;
/// Finite steps in a row before the scale grows (`growth_interval`).
pub const GROWTH_INTERVAL: u64 = 2000;

/// The scale and the finite steps since it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradScaler {
    /// What the loss is multiplied by.
    pub scale: f64,
    /// Finite steps in a row since the last growth or overflow.
    pub growth_tracker: u64,
}

impl Default for GradScaler {
    fn default() -> Self {
        Self {
            scale: INIT_SCALE,
            growth_tracker: 0,
        }
    }
}

impl GradScaler {
    /// After a step: an overflow (`found_inf`) halves the scale, [`GROWTH_INTERVAL`] finite
    /// steps in a row double it (PyTorch's `_amp_update_scale_`).
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= BACKOFF_FACTOR;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == GROWTH_INTERVAL {
                self.scale *= GROWTH_FACTOR;
                self.growth_tracker = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recursion written out: 1999 finite steps keep 2¹⁶, the 2000th doubles it, an
    /// overflow halves it and restarts the count, two overflows in a row halve it twice.
    #[test]
    fn the_scale_grows_every_2000_finite_steps_and_halves_on_overflow() {
        let mut s = GradScaler::default();
        for _ in 0..1999 {
            s.update(false);
        }
        assert_eq!((s.scale, s.growth_tracker), (65536.0, 1999));
        s.update(false);
        assert_eq!((s.scale, s.growth_tracker), (131072.0, 0));
        for _ in 0..1500 {
            s.update(false);
        }
        s.update(true);
        assert_eq!((s.scale, s.growth_tracker), (65536.0, 0));
        s.update(true);
        assert_eq!((s.scale, s.growth_tracker), (32768.0, 0));
        for _ in 0..2000 {
            s.update(false);
        }
        assert_eq!(s.scale, 65536.0);
    }
}
