//! Exact CPU time and peak memory of a job, read from a cgroup of its own.
//!
//! Docker's stats stream samples about once a second and stops when the
//! container does, so a short job would report nothing and a spike between
//! samples would be missed. Instead each job's container is created under a
//! parent cgroup made for that job (`cgroup_parent`, with the engine's
//! `cgroupfs` driver). The kernel charges usage up the hierarchy, and the
//! parent outlives the container's own cgroup, so after the container has
//! exited the parent still holds the job's total CPU time and its memory
//! high-water mark. The parent is removed with the job.
//!
//! cgroup v1: `cpuacct.usage` (ns) and `memory.max_usage_in_bytes`.
//! cgroup v2: `cpu.stat` `usage_usec` and `memory.peak` (Linux ≥ 5.19).
//! With the `systemd` driver the engine only takes `.slice` parents; there
//! the executor falls back to the stats stream (see [`crate::executor`]).

use std::path::{Path, PathBuf};

/// Where cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The cgroup under which every job's parent is made.
pub const JOBS_CGROUP: &str = "fog-jobs";

/// Usage of a finished job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_time_ns: u64,
    pub peak_memory_bytes: u64,
}

/// Which cgroup hierarchy the host runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hierarchy {
    V1,
    V2,
}

fn hierarchy(root: &Path) -> Hierarchy {
    if root.join("cgroup.controllers").exists() {
        Hierarchy::V2
    } else {
        Hierarchy::V1
    }
}

/// The cgroup parent of one job. Its directories are made by the engine when
/// the container is created; [`JobCgroup::remove`] deletes them.
#[derive(Debug)]
pub struct JobCgroup {
    root: PathBuf,
    hierarchy: Hierarchy,
    name: String,
}

impl JobCgroup {
    /// The job's cgroup, named after its container.
    pub fn new(name: &str) -> Self {
        let root = PathBuf::from(CGROUP_ROOT);
        Self {
            hierarchy: hierarchy(&root),
            root,
            name: name.to_owned(),
        }
    }

    /// The value for the container's `HostConfig.CgroupParent`.
    pub fn docker_parent(&self) -> String {
        format!("/{JOBS_CGROUP}/{}", self.name)
    }

    fn relative(&self) -> PathBuf {
        Path::new(JOBS_CGROUP).join(&self.name)
    }

    /// Reads the job's totals; `None` when the cgroup files are not there
    /// (e.g. the kernel lacks `memory.peak`), so the caller can fall back.
    pub fn usage(&self) -> Option<Usage> {
        let rel = self.relative();
        match self.hierarchy {
            Hierarchy::V1 => Some(Usage {
                cpu_time_ns: read_u64(&self.root.join("cpuacct").join(&rel).join("cpuacct.usage"))?,
                peak_memory_bytes: read_u64(
                    &self
                        .root
                        .join("memory")
                        .join(&rel)
                        .join("memory.max_usage_in_bytes"),
                )?,
            }),
            Hierarchy::V2 => {
                let dir = self.root.join(&rel);
                let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
                let usec = stat
                    .lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse::<u64>().ok())?;
                Some(Usage {
                    cpu_time_ns: usec.saturating_mul(1_000),
                    peak_memory_bytes: read_u64(&dir.join("memory.peak"))?,
                })
            }
        }
    }

    /// Every directory of this cgroup (one per v1 controller, one on v2).
    fn dirs(&self) -> Vec<PathBuf> {
        let rel = self.relative();
        match self.hierarchy {
            Hierarchy::V2 => vec![self.root.join(rel)],
            Hierarchy::V1 => std::fs::read_dir(&self.root)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| e.path().join(&rel))
                        .filter(|p| p.is_dir())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Deletes the job's cgroup directories. The container must be gone:
    /// a cgroup with tasks in it cannot be removed.
    pub fn remove(&self) -> Result<(), std::io::Error> {
        let mut first_error = None;
        for dir in self.dirs() {
            if let Err(e) = std::fs::remove_dir(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(cgroup = %dir.display(), error = %e, "removing the job's cgroup");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Names of the job cgroups whose names end with `suffix` (an executor's
    /// instance tag), as a killed miner may leave them.
    pub fn named_like(suffix: &str) -> Vec<String> {
        let root = PathBuf::from(CGROUP_ROOT);
        let jobs = match hierarchy(&root) {
            Hierarchy::V2 => root.join(JOBS_CGROUP),
            Hierarchy::V1 => root.join("memory").join(JOBS_CGROUP),
        };
        std::fs::read_dir(jobs)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("fog-") && n.ends_with(suffix))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether any directory of this cgroup is still there.
    pub fn exists(&self) -> bool {
        !self.dirs().is_empty()
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
