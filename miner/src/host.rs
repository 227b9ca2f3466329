//! What the host has: cores, memory, free disk under the work directory, load.

use std::path::Path;

use sysinfo::{Disks, System};

/// Why the host could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the host's {what}: {source}")]
pub struct HostError {
    what: &'static str,
    #[source]
    source: sysinfo::Error,
}

/// Resources detected on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostResources {
    pub cpu_millicores: u64,
    pub memory_bytes: u64,
    /// Free space on the file system holding the work directory.
    pub disk_bytes: u64,
    pub gpus: u32,
}

impl HostResources {
    /// Reads the host. GPUs are the NVIDIA devices (`/dev/nvidia0`, …) the
    /// kernel shows; whether containers can use them is the engine's side
    /// (its `nvidia` runtime), checked by the executor.
    pub fn detect(work_dir: &Path) -> Result<Self, HostError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let mut system = System::new().map_err(|source| HostError {
            what: "memory",
            source,
        })?;
        system.refresh_memory();
        let disks = Disks::new_with_refreshed_list().map_err(|source| HostError {
            what: "disks",
            source,
        })?;
        // The disk whose mount point is the longest prefix of the work directory holds it.
        let probe = existing_ancestor(work_dir);
        let disk_bytes = disks
            .iter()
            .filter(|d| probe.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len())
            .map_or(0, |d| d.available_space());
        Ok(Self {
            cpu_millicores: cores * 1000,
            memory_bytes: system.total_memory(),
            disk_bytes,
            gpus: nvidia_gpus(Path::new("/dev")),
        })
    }
}

/// Counts the NVIDIA GPU device nodes (`nvidia0`, `nvidia1`, …; not
/// `nvidiactl` or `nvidia-uvm`) in `dev`.
pub fn nvidia_gpus(dev: &Path) -> u32 {
    let Ok(entries) = std::fs::read_dir(dev) else {
        return 0;
    };
    let count = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("nvidia"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn existing_ancestor(path: &Path) -> std::path::PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .ancestors()
        .find(|p| p.exists())
        .map_or_else(|| "/".into(), Path::to_path_buf)
}

/// The one-minute load average divided by the number of cores.
pub fn load_per_core() -> Result<f64, HostError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = System::load_average().map_err(|source| HostError {
        what: "load average",
        source,
    })?;
    Ok(load.one / cores as f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_gpu_device_nodes_only() {
        let dev = tempfile::tempdir().unwrap();
        for name in [
            "nvidia0",
            "nvidia1",
            "nvidia12",
            "nvidiactl",
            "nvidia-uvm",
            "nvidia",
            "null",
        ] {
            std::fs::write(dev.path().join(name), b"").unwrap();
        }
        assert_eq!(nvidia_gpus(dev.path()), 3);
        assert_eq!(nvidia_gpus(&dev.path().join("absent")), 0);
    }
}
