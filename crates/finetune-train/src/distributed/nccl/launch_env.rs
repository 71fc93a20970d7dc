//! Who this process is in a multi-process launch: rank, world size and local rank, read from
//! the launcher's environment (torchrun's variables, else Open MPI's `mpirun`'s).

use finetune_core::{Error, Result};

/// This process's place in the launch. The GPU it drives is `local_rank` (one process per GPU,
/// numbered from 0 on every node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    /// The process's rank over every node, `0..world_size`.
    pub rank: usize,
    /// How many processes train together.
    pub world_size: usize,
    /// The process's rank on its own node: the CUDA device ordinal it uses.
    pub local_rank: usize,
}

/// torchrun's names, then Open MPI's: (rank, world size, local rank).
const LAUNCHERS: [(&str, [&str; 3]); 2] = [
    ("torchrun", ["RANK", "WORLD_SIZE", "LOCAL_RANK"]),
    (
        "Open MPI",
        [
            "OMPI_COMM_WORLD_RANK",
            "OMPI_COMM_WORLD_SIZE",
            "OMPI_COMM_WORLD_LOCAL_RANK",
        ],
    ),
];

impl Launch {
    /// Reads the process's environment: see [`Launch::from_lookup`].
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The first launcher whose rank variable `lookup` finds (torchrun's `RANK`, then Open
    /// MPI's `OMPI_COMM_WORLD_RANK`); its other two variables must be set too. An error names
    /// the variable that is missing or not a number, or a rank outside the world.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let (launcher, names) = LAUNCHERS
            .iter()
            .find(|(_, names)| lookup(names[0]).is_some())
            .ok_or_else(|| {
                Error::config(
                    "no launcher environment: set RANK, WORLD_SIZE and LOCAL_RANK (torchrun \
                     does), or start under Open MPI's mpirun (OMPI_COMM_WORLD_RANK, ...)",
                )
            })?;
        let read = |name: &str| -> Result<usize> {
            let text = lookup(name)
                .ok_or_else(|| Error::config(format!("{launcher} launch: {name} is not set")))?;
            text.trim().parse().map_err(|_| {
                Error::config(format!(
                    "{launcher} launch: {name}={text:?} is not a non-negative integer"
                ))
            })
        };
        let launch = Launch {
            rank: read(names[0])?,
            world_size: read(names[1])?,
            local_rank: read(names[2])?,
        };
        launch.check(names)
    }

    fn check(self, names: &[&str; 3]) -> Result<Self> {
        if self.rank >= self.world_size {
            return Err(Error::config(format!(
                "{}={} is outside the world of {}={} processes",
                names[0], self.rank, names[1], self.world_size
            )));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Launch> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Launch::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn torchrun_variables_come_first() {
        let l = launch(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("OMPI_COMM_WORLD_RANK", "0"),
            ("OMPI_COMM_WORLD_SIZE", "2"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "0"),
        ])
        .unwrap();
        assert_eq!(
            l,
            Launch {
                rank: 3,
                world_size: 4,
                local_rank: 1
            }
        );
    }

    #[test]
    fn open_mpi_variables_are_the_fallback() {
        let l = launch(&[
            ("OMPI_COMM_WORLD_RANK", "1"),
            ("OMPI_COMM_WORLD_SIZE", "2"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
        ])
        .unwrap();
        assert_eq!((l.rank, l.world_size, l.local_rank), (1, 2, 1));
    }

    #[test]
    fn missing_or_bad_variables_are_named() {
        let err = launch(&[]).unwrap_err().to_string();
        assert!(err.contains("RANK, WORLD_SIZE and LOCAL_RANK"), "{err}");
        let err = launch(&[("RANK", "0"), ("WORLD_SIZE", "2")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("LOCAL_RANK is not set"), "{err}");
        let err = launch(&[("RANK", "0"), ("WORLD_SIZE", "two"), ("LOCAL_RANK", "0")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("WORLD_SIZE=\"two\""), "{err}");
    }

    #[test]
    fn a_rank_outside_the_world_is_refused() {
        let err = launch(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("RANK=2 is outside the world of WORLD_SIZE=2"),
            "{err}"
        );
        let err = launch(&[("RANK", "0"), ("WORLD_SIZE", "0"), ("LOCAL_RANK", "0")]);
        assert!(err.is_err());
    }
}
