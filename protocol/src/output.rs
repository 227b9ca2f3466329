//! The deterministic output archive, its hash, its size limit and the one
//! safe way to unpack it.
//!
//! A job's output is the tar of its output directory, written so that the
//! same files always give the same bytes: entries sorted by path, times
//! zeroed, owners zeroed and unnamed, only the permission bits kept. Replicas
//! that produce the same files therefore report the same `outputHash`, and a
//! buyer checks a download by hashing it: `outputHash = sha256(archive)`.
//!
//! What is archived, by rule:
//! - regular files, directories and symbolic links (stored, never followed);
//! - FIFOs, sockets and device nodes are **skipped** and listed in
//!   [`Archived::skipped`]: they carry no data, a job cannot make device
//!   nodes (it has no `CAP_MKNOD`), and skipping by rule keeps replicas in
//!   agreement while the miner still gets paid for the work it did;
//! - hard links are archived as separate regular files (their bytes counted
//!   once per name, so they cannot be used to inflate the archive unseen).
//!
//! Size: the archive's exact length is computed from metadata *before* a byte
//! is written (file lengths are apparent sizes, so sparse holes count in
//! full), and an archive longer than the limit is refused with
//! [`OutputError::TooLarge`] without writing anything. [`output_limit`] is the
//! limit for a job's disk allowance.
//!
//! Unpacking ([`unpack_archive`]) never creates setuid, setgid or sticky
//! files, device nodes, FIFOs, hard links or files owned by anyone but the
//! unpacking user; modes lose group and other write; symbolic links must stay
//! inside the target, followed through every other link of the archive, and
//! are created last, so no file is ever written through one.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use alloy::primitives::B256;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

/// Size of a tar block: every header and every file's data is padded to it.
const BLOCK: u64 = 512;
/// Two zero blocks end an archive.
const END_OF_ARCHIVE: u64 = 2 * BLOCK;
/// How many symbolic links one path may pass through before it is refused as
/// a loop (Linux's own limit is 40).
const MAX_LINK_HOPS: usize = 40;
/// Mode bits an unpacked file or directory may keep: no setuid, setgid or
/// sticky bit, no write for group or others.
const UNPACK_MODE_MASK: u32 = 0o755;

/// The largest output archive a job with `disk_bytes` of disk may produce:
/// its disk allowance, plus tar's headers for as many entries as its file
/// system has inodes (one per 16 KiB, up to 1 KiB of header each with a long
/// name: 1/16 of the allowance), plus 2 MiB for the file system's slack
/// above the allowance, the minimum inode count's headers and the end of the
/// archive. Anything above cannot be real data written within the limit: it
/// is sparse holes or hard links.
pub fn output_limit(disk_bytes: u64) -> u64 {
    disk_bytes
        .saturating_add(disk_bytes / 16)
        .saturating_add(2 << 20)
}

/// The one file of the output that replaces a performed run's output when
/// that is over the limit: the run happened (its logs were delivered) so it
/// is paid, and the buyer reads here why the output is missing. Every honest
/// replica of a deterministic job writes the same one, so they still agree.
pub const OVER_LIMIT_MARKER: &str = "FOG-OUTPUT-OVER-LIMIT.txt";

/// The text of [`OVER_LIMIT_MARKER`] for an output of `size` bytes over `limit`.
pub fn over_limit_text(size: u64, limit: u64) -> String {
    format!(
        "The job's output was not kept: its archive would be {size} bytes, over the limit of {limit} bytes for its disk (sparse files and hard links count at their full size). The run itself was performed and is paid.\n"
    )
}

/// Why an output directory could not be archived or an archive unpacked.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output directory {0}: not a directory")]
    NotADirectory(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("output too large: {size} bytes, limit {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("{path}: changed size while it was being archived")]
    ChangedWhileReading { path: PathBuf },
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    #[error("archive entry {path:?}: {reason}")]
    UnsafeEntry { path: String, reason: String },
    #[error("{0} exists and is not an empty directory; refusing to unpack over it")]
    NotEmpty(PathBuf),
}

impl OutputError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The identity of an archive: its sha256 and length in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveDigest {
    pub sha256: B256,
    pub size: u64,
}

/// An entry of the output directory left out of the archive by rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedEntry {
    /// Relative to the output directory.
    pub path: PathBuf,
    /// "FIFO", "socket", "block device", "character device".
    pub kind: &'static str,
}

/// A written archive and what was left out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    pub digest: ArchiveDigest,
    pub skipped: Vec<SkippedEntry>,
}

/// sha256 of bytes, as the protocol's hashes of blobs and archives are taken.
pub fn sha256(bytes: &[u8]) -> B256 {
    B256::from(<[u8; 32]>::from(Sha256::digest(bytes)))
}

/// sha256 of everything `reader` yields, read in blocks (inputs may be large).
pub fn sha256_reader<R: Read>(mut reader: R) -> io::Result<B256> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(B256::from(<[u8; 32]>::from(hasher.finalize())))
}

/// One entry to archive: its path relative to the root and its metadata.
type Entry = (PathBuf, fs::Metadata);

/// Writes the deterministic archive of `dir` to `out` and returns its digest
/// and the entries skipped by rule. An archive longer than `limit` bytes is
/// refused before anything is written to `out`.
pub fn write_archive<W: Write>(dir: &Path, out: W, limit: u64) -> Result<Archived, OutputError> {
    let root_meta = fs::symlink_metadata(dir).map_err(OutputError::io(dir))?;
    if !root_meta.is_dir() {
        return Err(OutputError::NotADirectory(dir.to_owned()));
    }
    let (mut entries, skipped) = collect(dir)?;
    // Byte order of the relative path: independent of the file system's
    // directory order, and a parent always sorts before its children.
    entries.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));

    let size = archive_size(dir, &entries)?;
    if size > limit {
        return Err(OutputError::TooLarge { size, limit });
    }

    let mut builder = tar::Builder::new(HashingWriter::new(out, limit));
    for (relative, meta) in &entries {
        let full = dir.join(relative);
        let mut header = entry_header(meta);
        let kind = meta.file_type();
        if kind.is_dir() {
            builder
                .append_data(&mut header, relative, io::empty())
                .map_err(OutputError::Write)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&full).map_err(OutputError::io(&full))?;
            builder
                .append_link(&mut header, relative, target)
                .map_err(OutputError::Write)?;
        } else {
            // `collect` admits only directories, links and regular files.
            let file = File::open(&full).map_err(OutputError::io(&full))?;
            header.set_size(meta.len());
            let mut reader = ExactReader {
                inner: file,
                remaining: meta.len(),
                short: false,
            };
            let result = builder.append_data(&mut header, relative, &mut reader);
            if reader.short || reader.remaining != 0 || reader_has_more(&mut reader.inner) {
                return Err(OutputError::ChangedWhileReading { path: full });
            }
            result.map_err(OutputError::Write)?;
        }
    }
    let hashing = builder.into_inner().map_err(OutputError::Write)?;
    let digest = hashing.finish()?;
    debug_assert_eq!(digest.size, size, "the computed size is the written size");
    Ok(Archived { digest, skipped })
}

/// The digest of `dir`'s archive, without keeping the archive or limiting it.
pub fn archive_digest(dir: &Path) -> Result<ArchiveDigest, OutputError> {
    Ok(write_archive(dir, io::sink(), u64::MAX)?.digest)
}

/// The header of an entry, without its size (set for regular files only).
fn entry_header(meta: &fs::Metadata) -> Header {
    let mut header = Header::new_gnu();
    header.set_mode(meta.permissions().mode() & 0o7777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    let kind = meta.file_type();
    header.set_entry_type(if kind.is_dir() {
        EntryType::Directory
    } else if kind.is_symlink() {
        EntryType::Symlink
    } else {
        EntryType::Regular
    });
    header
}

/// The exact length of the archive of `entries`, from metadata alone: each
/// entry's headers (long names and link targets take extra blocks, so the
/// tar writer itself measures them, with no data) plus its data padded to a
/// block, plus the end of the archive. Sparse holes count at their apparent
/// size, as the archive will hold them.
fn archive_size(dir: &Path, entries: &[Entry]) -> Result<u64, OutputError> {
    let mut headers = tar::Builder::new(CountingSink::default());
    let mut data = 0u64;
    for (relative, meta) in entries {
        let mut header = entry_header(meta);
        if meta.file_type().is_symlink() {
            let full = dir.join(relative);
            let target = fs::read_link(&full).map_err(OutputError::io(&full))?;
            headers
                .append_link(&mut header, relative, target)
                .map_err(OutputError::Write)?;
        } else {
            headers
                .append_data(&mut header, relative, io::empty())
                .map_err(OutputError::Write)?;
            if meta.file_type().is_file() {
                data = data.saturating_add(meta.len().div_ceil(BLOCK).saturating_mul(BLOCK));
            }
        }
    }
    let counted = headers.get_ref().0;
    Ok(counted.saturating_add(data).saturating_add(END_OF_ARCHIVE))
}

/// Every directory, regular file and symlink under `root` (not following
/// links), and the special files skipped. Iterative, so a deeply nested
/// output cannot exhaust the stack.
fn collect(root: &Path) -> Result<(Vec<Entry>, Vec<SkippedEntry>), OutputError> {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        let read = fs::read_dir(&dir).map_err(OutputError::io(&dir))?;
        for entry in read {
            let entry = entry.map_err(OutputError::io(&dir))?;
            let rel = relative.join(entry.file_name());
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(OutputError::io(&path))?;
            let kind = meta.file_type();
            if kind.is_dir() {
                pending.push(rel.clone());
                entries.push((rel, meta));
            } else if kind.is_file() || kind.is_symlink() {
                entries.push((rel, meta));
            } else {
                skipped.push(SkippedEntry {
                    path: rel,
                    kind: special_kind(&meta),
                });
            }
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((entries, skipped))
}

fn special_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

/// Unpacks an output archive into `into`, which must be absent or an empty
/// directory. Only what [`write_archive`] writes is accepted: regular files,
/// directories and symlinks at relative paths without `..`. Modes are masked
/// to `0o755` (the owner keeps read and write); owners are the unpacking
/// user's. A symlink must resolve inside `into`, also through the archive's
/// other links; links are made after every file, so nothing is written
/// through one. On an error, what was unpacked so far stays for inspection
/// and nothing is outside `into`.
pub fn unpack_archive<R: Read>(archive: R, into: &Path) -> Result<(), OutputError> {
    match fs::read_dir(into) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(OutputError::NotEmpty(into.to_owned()));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(into).map_err(OutputError::io(into))?
        }
        Err(_) => return Err(OutputError::NotEmpty(into.to_owned())),
    }
    let mut archive = tar::Archive::new(archive);
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    // Directory modes are applied last: a read-only directory still has to
    // receive its files first.
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    for entry in archive.entries().map_err(OutputError::Read)? {
        let mut entry = entry.map_err(OutputError::Read)?;
        let path = entry.path().map_err(OutputError::Read)?.into_owned();
        let unsafe_entry = |reason: &str| OutputError::UnsafeEntry {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        let relative = normal_relative(&path)
            .ok_or_else(|| unsafe_entry("path must be relative and must not contain .."))?;
        let mode = entry.header().mode().map_err(OutputError::Read)? & UNPACK_MODE_MASK;
        let target = into.join(&relative);
        match entry.header().entry_type() {
            EntryType::Directory => {
                create_parents(into, &relative)?;
                match fs::create_dir(&target) {
                    Ok(()) => {}
                    // A parent made implicitly by an earlier entry.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && target.is_dir() => {}
                    Err(e) => return Err(OutputError::io(&target)(e)),
                }
                dir_modes.push((target, mode | 0o700));
            }
            EntryType::Regular => {
                create_parents(into, &relative)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    // O_CREAT|O_EXCL never follows a link at the last component.
                    .mode(0o600)
                    .open(&target)
                    .map_err(OutputError::io(&target))?;
                io::copy(&mut entry, &mut file).map_err(OutputError::Read)?;
                file.set_permissions(fs::Permissions::from_mode(mode | 0o600))
                    .map_err(OutputError::io(&target))?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(OutputError::Read)?
                    .ok_or_else(|| unsafe_entry("symlink without a target"))?
                    .into_owned();
                links.push((relative, link));
            }
            _ => {
                return Err(unsafe_entry(
                    "only files, directories and symlinks may be unpacked",
                ));
            }
        }
    }
    let by_path: HashMap<PathBuf, PathBuf> = links.iter().cloned().collect();
    for (relative, link) in &links {
        if let Err(reason) = check_link(relative, link, &by_path) {
            return Err(OutputError::UnsafeEntry {
                path: relative.display().to_string(),
                reason: format!("symlink to {}: {reason}", link.display()),
            });
        }
        create_parents(into, relative)?;
        let target = into.join(relative);
        std::os::unix::fs::symlink(link, &target).map_err(OutputError::io(&target))?;
    }
    for (dir, mode) in dir_modes.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
            .map_err(OutputError::io(dir))?;
    }
    Ok(())
}

/// `path` as plain relative components, or `None` if it is absolute, empty
/// or has `..` (`.` components are dropped).
fn normal_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Creates the parent directories of `relative` under `into` (owner-only
/// until the archive's own directory entries give their modes). Links do not
/// exist yet, so every ancestor is a real directory or is refused.
fn create_parents(into: &Path, relative: &Path) -> Result<(), OutputError> {
    let mut at = into.to_owned();
    let Some(parent) = relative.parent() else {
        return Ok(());
    };
    for component in parent.components() {
        at.push(component);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(OutputError::UnsafeEntry {
                    path: relative.display().to_string(),
                    reason: format!("{} is not a directory", at.display()),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&at)
                    .map_err(OutputError::io(&at))?;
            }
            Err(e) => return Err(OutputError::io(&at)(e)),
        }
    }
    Ok(())
}

/// Whether the link at `relative` (inside the unpack root) pointing at
/// `target` stays inside the root, resolving every link of the archive it
/// passes through as the kernel would. `Err` says why not.
fn check_link(
    relative: &Path,
    target: &Path,
    links: &HashMap<PathBuf, PathBuf>,
) -> Result<(), &'static str> {
    if target.is_absolute() {
        return Err("absolute targets point outside the output");
    }
    // Where resolution stands (components from the root), and what is left.
    let mut at: Vec<OsString> = relative
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut rest: Vec<OsString> = target
        .components()
        .rev()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut hops = 0;
    while let Some(name) = rest.pop() {
        match name.to_str() {
            Some(".") => continue,
            Some("..") => {
                if at.pop().is_none() {
                    return Err("points outside the output");
                }
                continue;
            }
            _ => {}
        }
        at.push(name);
        let here: PathBuf = at.iter().collect();
        if let Some(next) = links.get(&here) {
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return Err("too many levels of symbolic links");
            }
            if next.is_absolute() {
                return Err("passes through a link with an absolute target");
            }
            at.pop();
            rest.extend(next.components().rev().map(|c| c.as_os_str().to_owned()));
        }
    }
    Ok(())
}

fn reader_has_more(file: &mut File) -> bool {
    let mut byte = [0u8; 1];
    matches!(file.read(&mut byte), Ok(n) if n > 0)
}

/// Reads exactly `remaining` bytes, noting a file that shrank underneath us
/// (the header already promised its size).
struct ExactReader {
    inner: File,
    remaining: u64,
    short: bool,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.short = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being archived",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Counts bytes and drops them: measures headers.
#[derive(Default)]
struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Passes bytes through while hashing and counting them, and refuses to pass
/// more than `limit` in all (a second guard behind the computed size).
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W, limit: u64) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
            limit,
        }
    }

    fn finish(mut self) -> Result<ArchiveDigest, OutputError> {
        self.inner.flush().map_err(OutputError::Write)?;
        Ok(ArchiveDigest {
            sha256: B256::from(<[u8; 32]>::from(self.hasher.finalize())),
            size: self.size,
        })
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size.saturating_add(buf.len() as u64) > self.limit {
            return Err(io::Error::other(format!(
                "output too large: more than {} bytes",
                self.limit
            )));
        }
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
