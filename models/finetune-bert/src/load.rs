//! Loading a checkpoint into a [`ParamStore`] under the model's names, with a report of what was
//! newly initialised and what went unused, as transformers prints on `from_pretrained`.

use crate::arch::{EncoderConfig, Expected, Role};
use candle_core::{DType, Device, Tensor};
use finetune_core::model_io::{load_float, Sources};
use finetune_core::nn::init;
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, ParamStore, Result, Rng, TensorKind};

/// What loading did besides copying tensors; `naming` is `"prefixed"` (`bert.*`) or `"bare"`
/// (`embeddings.*`, `encoder.*`), and so for each family's prefix.
pub type LoadReport = finetune_core::model_io::LoadReport<&'static str>;

/// Loads `ckpt` for `config` into a new store of `dtype` on `device`. Tensors to initialise
/// draw from `rng` (normal(0, initializer_range) weights, zero biases, as transformers'
/// `_init_weights`). With `new_head` the classifier is initialised (and reported as replaced)
/// even when the checkpoint's fits.
pub fn load_checkpoint<C: EncoderConfig>(
    ckpt: &Checkpoint,
    config: &C,
    new_head: bool,
    device: &Device,
    dtype: DType,
    rng: &mut Rng,
) -> Result<(ParamStore, LoadReport)> {
    let expected = config.expected_tensors();
    load_expected(ckpt, config, &expected, new_head, device, dtype, rng)
}

/// [`load_checkpoint`] for the tensors of `expected` (another head than the config's
/// sequence head: a token classifier's).
pub fn load_expected<C: EncoderConfig>(
    ckpt: &Checkpoint,
    config: &C,
    expected: &[Expected],
    new_head: bool,
    device: &Device,
    dtype: DType,
    rng: &mut Rng,
) -> Result<(ParamStore, LoadReport)> {
    let prefix = format!("{}.", C::NAMING.prefix);
    let prefixed = ckpt.headers().iter().any(|h| h.name.starts_with(&prefix));
    let mut report = LoadReport::new(C::FAMILY, if prefixed { "prefixed" } else { "bare" });
    let mut sources = Sources::map(ckpt, C::canonical_name)?;
    let store = ParamStore::new();
    for (name, shape, role) in expected {
        let loaded = match sources.take(name) {
            Some(src) => {
                let t = load_float(ckpt, &src, device)?;
                if t.dims() == shape.as_slice() && !(new_head && *role == Role::Head) {
                    Some(t.to_dtype(dtype)?)
                } else if *role == Role::Head {
                    report
                        .resized
                        .push((name.clone(), t.dims().to_vec(), shape.clone()));
                    None
                } else {
                    return Err(Error::Shape {
                        name: format!("{src} (checkpoint) for {name}"),
                        expected: shape.clone(),
                        got: t.dims().to_vec(),
                    });
                }
            }
            None if *role == Role::Encoder => {
                return Err(Error::config(format!(
                    "checkpoint lacks tensor `{name}` (shape {shape:?}; bare name `{}`)",
                    name.trim_start_matches(&prefix)
                )))
            }
            None => {
                report.newly_initialized.push(name.clone());
                None
            }
        };
        let t = match loaded {
            Some(t) => t,
            None if name.ends_with(".bias") => Tensor::zeros(shape.as_slice(), dtype, device)?,
            None => init::normal(shape, 0.0, config.initializer_range(), rng, dtype, device)?,
        };
        store.insert(name, &t, TensorKind::Parameter)?;
    }
    (report.unused, report.unused_buffers) = sources.unused();
    Ok((store, report))
}
