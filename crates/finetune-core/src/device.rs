//! Device selection: `auto | cpu | cuda[:N] | metal`.
//!
//! `auto` picks CUDA when this build has the `cuda` feature and a GPU is present, then Metal
//! (with the `metal` feature), then the CPU.

use crate::error::{Error, Result};
use candle_core::Device;

/// A parsed `--device` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// `auto`: CUDA device 0 when this build has the `cuda` feature and a GPU answers, else
    /// Metal device 0 (with the `metal` feature), else the CPU. Never fails.
    Auto,
    /// `cpu`: the host CPU.
    Cpu,
    /// `cuda` or `cuda:N`: CUDA device `N` (0 without an ordinal); needs the `cuda` feature.
    Cuda(usize),
    /// `metal` or `metal:N`: Metal device `N` (0 without an ordinal); needs the `metal` feature.
    Metal(usize),
}

impl std::str::FromStr for DeviceSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::config(format!(
                "unknown device `{s}`: expected auto, cpu, cuda, cuda:N or metal"
            ))
        };
        let ordinal = |rest: &str| -> Result<usize> {
            if rest.is_empty() {
                Ok(default_ordinal())
            } else {
                rest.strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)
            }
        };
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            _ if s.starts_with("cuda") => Ok(Self::Cuda(ordinal(&s[4..])?)),
            _ if s.starts_with("metal") => Ok(Self::Metal(ordinal(&s[5..])?)),
            _ => Err(bad()),
        }
    }
}

impl DeviceSpec {
    /// Opens the device; a GPU this build or machine lacks is a clear error.
    pub fn open(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => {
                if !cfg!(feature = "cuda") {
                    return Err(Error::config(
                        "this build has no CUDA support: rebuild with `--features cuda`",
                    ));
                }
                Device::new_cuda(n).map_err(|e| Error::config(format!("cannot open cuda:{n}: {e}")))
            }
            Self::Metal(n) => {
                if !cfg!(feature = "metal") {
                    return Err(Error::config(
                        "this build has no Metal support: rebuild with `--features metal`",
                    ));
                }
                Device::new_metal(n)
                    .map_err(|e| Error::config(format!("cannot open metal:{n}: {e}")))
            }
            Self::Auto => {
                if cfg!(feature = "cuda") && candle_core::utils::cuda_is_available() {
                    if let Ok(d) = Device::new_cuda(default_ordinal()) {
                        return Ok(d);
                    }
                }
                if cfg!(feature = "metal") && candle_core::utils::metal_is_available() {
                    if let Ok(d) = Device::new_metal(0) {
                        return Ok(d);
                    }
                }
                Ok(Device::Cpu)
            }
        }
    }
}

/// Parses and opens a `--device` value.
pub fn select_device(spec: &str) -> Result<Device> {
    spec.parse::<DeviceSpec>()?.open()
}

/// The GPU that `cuda`, `metal` and `auto` name without an ordinal: 0, unless a launcher set
/// it ([`set_default_ordinal`]).
static DEFAULT_ORDINAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Makes `cuda`, `metal` and `auto` mean GPU `n` from now on in this process (as PyTorch's
/// `torch.cuda.set_device`): a data-parallel launcher gives each local rank its own GPU.
pub fn set_default_ordinal(n: usize) {
    DEFAULT_ORDINAL.store(n, std::sync::atomic::Ordering::SeqCst);
}

fn default_ordinal() -> usize {
    DEFAULT_ORDINAL.load(std::sync::atomic::Ordering::SeqCst)
}

/// A short name for logs: `cpu`, `cuda:0`, `metal:0`.
pub fn device_name(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_specs() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
        assert_eq!("metal".parse::<DeviceSpec>().unwrap(), DeviceSpec::Metal(0));
        for bad in ["gpu", "cuda:", "cuda:x", "cuda1", ""] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_falls_back_to_cpu_without_gpu_features() {
        let d = select_device("auto").unwrap();
        if !cfg!(feature = "cuda") && !cfg!(feature = "metal") {
            assert!(d.is_cpu());
        }
        if !cfg!(feature = "cuda") {
            let e = select_device("cuda").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
