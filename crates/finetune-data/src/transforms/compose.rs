//! `Compose`: transforms applied in order, all drawing from the one per-sample generator.

use super::{Sample, TensorImage, Transform};
use crate::image::Image;
use finetune_core::{Error, Result, Rng};
use std::sync::Arc;

/// A pipeline: `transforms.Compose([...])`. Clones share the steps (they are immutable).
/// The default is the empty pipeline, which passes a sample through unchanged.
#[derive(Debug, Clone, Default)]
pub struct Compose {
    steps: Vec<Arc<dyn Transform>>,
}

impl Compose {
    /// An empty pipeline; add steps with [`Compose::then`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a step.
    pub fn then(mut self, t: impl Transform + 'static) -> Self {
        self.steps.push(Arc::new(t));
        self
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the pipeline has no step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Applies the steps in order, each drawing from `rng` in turn; stops at the first error.
    pub fn apply(&self, mut x: Sample, rng: &mut Rng) -> Result<Sample> {
        for t in &self.steps {
            x = t.apply(x, rng)?;
        }
        Ok(x)
    }

    /// Runs the pipeline on an image; it must end in a tensor (i.e. contain `ToTensor`).
    pub fn run(&self, img: Image, rng: &mut Rng) -> Result<TensorImage> {
        match self.apply(Sample::Pixels(img), rng)? {
            Sample::Tensor(t) => Ok(t),
            Sample::Pixels(_) => Err(Error::config(
                "the transform pipeline must contain ToTensor",
            )),
        }
    }
}

impl Transform for Compose {
    fn apply(&self, x: Sample, rng: &mut Rng) -> Result<Sample> {
        Compose::apply(self, x, rng)
    }
}
