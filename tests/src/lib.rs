//! Harness for Fog's cross-process tests: finds the workspace's binaries and
//! the repository's files, so tests drive the real programs.

pub mod batchkit;
pub mod bench;
pub mod cli;
pub mod devnet;
pub mod fleet;
pub mod handminer;

use std::path::{Path, PathBuf};

/// Why a test fixture could not be found.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "binary {name} not found at {path}; build the workspace first (`cargo build --workspace --bins`, as `make test` does)"
    )]
    MissingBinary { name: String, path: PathBuf },
    #[error("cannot locate the test executable: {0}")]
    CurrentExe(#[source] std::io::Error),
}

/// The repository root (the workspace directory).
pub fn repo_root() -> &'static Path {
    // This crate lives at `<root>/tests`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// Path of a workspace binary built in the same profile as the running test.
pub fn binary(name: &str) -> Result<PathBuf, HarnessError> {
    // Test executables live in `target/<profile>/deps/`, benchmark binaries
    // in `target/<profile>/`, beside the workspace's binaries.
    let exe = std::env::current_exe().map_err(HarnessError::CurrentExe)?;
    let parent = exe.parent().unwrap_or(Path::new("."));
    let profile_dir = if parent.file_name().is_some_and(|n| n == "deps") {
        parent.parent().unwrap_or(parent).to_path_buf()
    } else {
        parent.to_path_buf()
    };
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::MissingBinary {
            name: name.to_owned(),
            path,
        })
    }
}
