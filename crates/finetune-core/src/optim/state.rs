//! An optimizer's state as a record: hyper-parameters, groups and step counts as JSON
//! (`optimizer.json`), state buffers as tensors named `{param}.{slot}` (`optimizer.safetensors`).

use crate::error::{Error, Result};
use crate::fsutil::write_bytes_atomically;
use crate::groups::ParamGroup;
use crate::safetensors_io::{save_tensors, Checkpoint};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One state buffer of one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotState {
    /// The parameter's name.
    pub param: String,
    /// The buffer's name, PyTorch's state key (`exp_avg`, `exp_avg_sq`, `momentum_buffer`, …).
    pub slot: String,
    /// The parameter's shape.
    pub shape: Vec<usize>,
    /// The values in row-major order, as f32 whatever the parameter's dtype.
    pub data: Vec<f32>,
}

/// An optimizer's state, as [`Optimizer::state`](super::Optimizer::state) returns and
/// [`Optimizer::load_state`](super::Optimizer::load_state) takes it; the counterpart of
/// PyTorch's `optimizer.state_dict()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// The optimizer's name (`adamw`, …); another optimizer refuses the state.
    pub optimizer: String,
    /// The update rule's hyper-parameters as JSON (e.g. `{"betas": [0.9, 0.999], "eps": 1e-8,
    /// "amsgrad": false}`).
    pub hyper: serde_json::Value,
    /// The param groups, their current lrs included.
    pub groups: Vec<ParamGroup>,
    /// Per-parameter step counts.
    pub steps: BTreeMap<String, u64>,
    /// The state buffers, one per parameter and slot; not part of the JSON (they go to
    /// `optimizer.safetensors`).
    #[serde(skip)]
    pub slots: Vec<SlotState>,
}

pub const STATE_JSON: &str = "optimizer.json";
pub const STATE_TENSORS: &str = "optimizer.safetensors";

impl OptimizerState {
    /// Writes `optimizer.json` and `optimizer.safetensors` into `dir` (each atomically).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tensors = self
            .slots
            .iter()
            .map(|s| {
                let t = Tensor::from_slice(&s.data, s.shape.as_slice(), &Device::Cpu)?;
                Ok((format!("{}.{}", s.param, s.slot), t))
            })
            .collect::<Result<Vec<_>>>()?;
        save_tensors(&dir.join(STATE_TENSORS), &tensors)?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::config(e.to_string()))?;
        write_bytes_atomically(&dir.join(STATE_JSON), &json)
    }

    /// Reads what [`OptimizerState::save`] wrote into `dir`. Fails, naming the file, when
    /// either file is missing or malformed, or a tensor is not f32 or not named `param.slot`.
    pub fn load(dir: &Path) -> Result<Self> {
        let jpath = dir.join(STATE_JSON);
        let text = std::fs::read(&jpath).map_err(|e| Error::io(&jpath, e))?;
        let mut st: OptimizerState = serde_json::from_slice(&text).map_err(|e| Error::Record {
            path: jpath.clone(),
            msg: format!("not a valid optimizer state: {e}"),
        })?;
        let tpath = dir.join(STATE_TENSORS);
        let ckpt = Checkpoint::open(&tpath)?;
        for h in ckpt.headers() {
            let (param, slot) = h.name.rsplit_once('.').ok_or_else(|| Error::Record {
                path: tpath.clone(),
                msg: format!("tensor `{}` is not named `param.slot`", h.name),
            })?;
            let t = ckpt.load(&h.name, &Device::Cpu)?;
            if t.dtype() != DType::F32 {
                return Err(Error::Record {
                    path: tpath.clone(),
                    msg: format!("tensor `{}` is {:?}, expected F32", h.name, t.dtype()),
                });
            }
            st.slots.push(SlotState {
                param: param.to_string(),
                slot: slot.to_string(),
                shape: t.dims().to_vec(),
                data: t.flatten_all()?.to_vec1::<f32>()?,
            });
        }
        Ok(st)
    }
}
