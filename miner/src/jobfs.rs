//! A job's own file system: a sparse ext4 image, loop-mounted under the work
//! directory, holding the job's inputs and outputs. Its size is the job's
//! disk limit (Docker cannot limit bind mounts, and overlay2 on ext4 cannot
//! limit a container's layer), and it disappears with the job.
//!
//! Needs root, `mkfs.ext4` (e2fsprogs) and `mount`/`umount` with loop support.

use std::path::{Path, PathBuf};
use std::process::Command;

/// ext4's fixed metadata without a journal (superblock, group descriptors,
/// bitmaps, root directory) on a job-sized file system; added so that the job
/// gets about the disk it asked for, and not much more.
const METADATA_ALLOWANCE: u64 = 512 << 10;
/// Bytes of inode table per inode (ext4's default inode size).
const INODE_BYTES: u64 = 256;

/// Why the job's file system could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum JobFsError {
    #[error("{step}: {detail}")]
    Command { step: &'static str, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JobFsError + '_ {
    move |source| JobFsError::Io {
        path: path.to_owned(),
        source,
    }
}

fn run(step: &'static str, cmd: &mut Command) -> Result<(), JobFsError> {
    let out = cmd.output().map_err(|e| JobFsError::Command {
        step,
        detail: format!("cannot run {:?}: {e}", cmd.get_program()),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(JobFsError::Command {
            step,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// A mounted job file system; [`JobFs::remove`] unmounts and deletes it.
#[derive(Debug)]
pub struct JobFs {
    image: PathBuf,
    mount_point: PathBuf,
    mounted: bool,
}

impl JobFs {
    /// Creates and mounts a file system of about `bytes` with at least
    /// `inodes` files for a job at `dir/<name>`; its root belongs to `owner`
    /// (uid:gid). The inode count is part of the limit: a job that makes
    /// more files than that finds its disk full.
    pub fn create(
        dir: &Path,
        name: &str,
        bytes: u64,
        inodes: u64,
        owner: (u32, u32),
    ) -> Result<Self, JobFsError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let image = dir.join(format!("{name}.img"));
        let mount_point = dir.join(name);
        let size = bytes
            .saturating_add(inodes.saturating_mul(INODE_BYTES))
            .saturating_add(METADATA_ALLOWANCE);
        let file = std::fs::File::create(&image).map_err(io_err(&image))?;
        file.set_len(size).map_err(io_err(&image))?;
        drop(file);
        let mut fs = Self {
            image,
            mount_point,
            mounted: false,
        };
        let made = (|| {
            run(
                "mkfs.ext4",
                Command::new("mkfs.ext4")
                    // 4 KiB blocks whatever the size (mke2fs would pick 1 KiB
                    // and many more inodes for a small file system); no
                    // journal: the file system dies with the job, and a
                    // journal would take megabytes of a small allowance.
                    .args([
                        "-q",
                        "-F",
                        "-m",
                        "0",
                        "-b",
                        "4096",
                        "-O",
                        "^has_journal",
                        "-N",
                    ])
                    .arg(inodes.to_string())
                    .arg("-E")
                    .arg(format!("root_owner={}:{}", owner.0, owner.1))
                    .arg(&fs.image),
            )?;
            std::fs::create_dir_all(&fs.mount_point).map_err(io_err(&fs.mount_point))?;
            run(
                "mount",
                Command::new("mount")
                    .args(["-o", "loop,nosuid,nodev"])
                    .arg(&fs.image)
                    .arg(&fs.mount_point),
            )?;
            fs.mounted = true;
            // mkfs leaves lost+found; a job's directories start empty.
            let lost = fs.mount_point.join("lost+found");
            std::fs::remove_dir(&lost).map_err(io_err(&lost))
        })();
        match made {
            Ok(()) => Ok(fs),
            Err(e) => {
                // Best effort: the original error is the one worth reporting.
                let _ = fs.teardown();
                Err(e)
            }
        }
    }

    /// Unmounts and deletes a job file system that a killed miner left at
    /// `dir/<name>` (and its image), if there is one.
    pub fn reclaim(dir: &Path, name: &str) -> Result<(), JobFsError> {
        let mount_point = dir.join(name);
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mounted = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .any(|m| Path::new(m) == mount_point);
        let mut fs = Self {
            image: dir.join(format!("{name}.img")),
            mount_point,
            mounted,
        };
        fs.teardown()
    }

    /// Where the file system is mounted.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    /// Unmounts and deletes the file system and its image.
    pub fn remove(mut self) -> Result<(), JobFsError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), JobFsError> {
        if self.mounted {
            run("umount", Command::new("umount").arg(&self.mount_point))?;
            self.mounted = false;
        }
        if self.mount_point.exists() {
            std::fs::remove_dir(&self.mount_point).map_err(io_err(&self.mount_point))?;
        }
        if self.image.exists() {
            std::fs::remove_file(&self.image).map_err(io_err(&self.image))?;
        }
        Ok(())
    }
}

impl Drop for JobFs {
    fn drop(&mut self) {
        if (self.mounted || self.image.exists())
            && let Err(e) = self.teardown()
        {
            tracing::error!(mount = %self.mount_point.display(), error = %e, "job file system left behind");
        }
    }
}
