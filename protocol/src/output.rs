//! The deterministic output archive and its hash.
//!
//! A job's output is the tar of its output directory, written so that the
//! same files always give the same bytes: entries sorted by path, times
//! zeroed, owners zeroed and unnamed, only the permission bits kept. Replicas
//! that produce the same files therefore report the same `outputHash`, and a
//! buyer checks a download by hashing it: `outputHash = sha256(archive)`.
//!
//! Regular files, directories and symbolic links (stored, never followed)
//! are archived; any other kind of entry (device, FIFO, socket) is an error,
//! since it cannot be a meaningful job output.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use alloy::primitives::B256;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

/// Why an output directory could not be archived.
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
    #[error("{path}: a {kind} cannot be part of a job's output")]
    UnsupportedEntry { path: PathBuf, kind: &'static str },
    #[error("{path}: changed size while it was being archived")]
    ChangedWhileReading { path: PathBuf },
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    #[error("archive entry {path:?}: {reason}")]
    UnsafeEntry { path: String, reason: &'static str },
    #[error("{0} exists and is not an empty directory; refusing to unpack over it")]
    NotEmpty(PathBuf),
}

/// The identity of an archive: its sha256 and length in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveDigest {
    pub sha256: B256,
    pub size: u64,
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

/// Writes the deterministic archive of `dir` to `out` and returns its digest.
pub fn write_archive<W: Write>(dir: &Path, out: W) -> Result<ArchiveDigest, OutputError> {
    let root_meta = fs::symlink_metadata(dir).map_err(|source| OutputError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if !root_meta.is_dir() {
        return Err(OutputError::NotADirectory(dir.to_owned()));
    }
    let mut entries = Vec::new();
    collect(dir, Path::new(""), &mut entries)?;
    // Byte order of the relative path: independent of the file system's
    // directory order, and a parent always sorts before its children.
    entries.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));

    let mut builder = tar::Builder::new(HashingWriter::new(out));
    for (relative, meta) in &entries {
        let full = dir.join(relative);
        let io_err = |source| OutputError::Io {
            path: full.clone(),
            source,
        };
        let mut header = Header::new_gnu();
        header.set_mode(meta.permissions().mode() & 0o7777);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let kind = meta.file_type();
        if kind.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_size(0);
            builder
                .append_data(&mut header, relative, io::empty())
                .map_err(OutputError::Write)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&full).map_err(io_err)?;
            header.set_entry_type(EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, relative, target)
                .map_err(OutputError::Write)?;
        } else {
            // `collect` admits only directories, links and regular files.
            let file = File::open(&full).map_err(io_err)?;
            header.set_entry_type(EntryType::Regular);
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
    hashing.finish()
}

/// The digest of `dir`'s archive, without keeping the archive.
pub fn archive_digest(dir: &Path) -> Result<ArchiveDigest, OutputError> {
    write_archive(dir, io::sink())
}

/// Unpacks an output archive into `into`, which must be absent or an empty
/// directory. Only what [`write_archive`] writes is accepted (regular files,
/// directories, symlinks, relative paths without `..`); nothing is written
/// outside `into`, even through a symlink the archive made.
pub fn unpack_archive<R: Read>(archive: R, into: &Path) -> Result<(), OutputError> {
    let io_err = |source| OutputError::Io {
        path: into.to_owned(),
        source,
    };
    match fs::read_dir(into) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(OutputError::NotEmpty(into.to_owned()));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(into).map_err(io_err)?
        }
        Err(_) => return Err(OutputError::NotEmpty(into.to_owned())),
    }
    let mut archive = tar::Archive::new(archive);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(false);
    for entry in archive.entries().map_err(OutputError::Read)? {
        let mut entry = entry.map_err(OutputError::Read)?;
        let path = entry.path().map_err(OutputError::Read)?.into_owned();
        let shown = path.display().to_string();
        let unsafe_entry = |reason| OutputError::UnsafeEntry {
            path: shown.clone(),
            reason,
        };
        if !matches!(
            entry.header().entry_type(),
            EntryType::Regular | EntryType::Directory | EntryType::Symlink
        ) {
            return Err(unsafe_entry(
                "only files, directories and symlinks may be unpacked",
            ));
        }
        if path.is_absolute()
            || path.components().any(|c| {
                !matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            })
        {
            return Err(unsafe_entry(
                "path must be relative and must not contain ..",
            ));
        }
        // `unpack_in` also refuses to write through a symlink that leads outside `into`.
        let inside = entry.unpack_in(into).map_err(OutputError::Read)?;
        if !inside {
            return Err(unsafe_entry(
                "would be written outside the output directory",
            ));
        }
    }
    Ok(())
}

fn collect(
    root: &Path,
    relative: &Path,
    out: &mut Vec<(PathBuf, fs::Metadata)>,
) -> Result<(), OutputError> {
    let dir = root.join(relative);
    let read = fs::read_dir(&dir).map_err(|source| OutputError::Io {
        path: dir.clone(),
        source,
    })?;
    for entry in read {
        let entry = entry.map_err(|source| OutputError::Io {
            path: dir.clone(),
            source,
        })?;
        let rel = relative.join(entry.file_name());
        let meta = fs::symlink_metadata(entry.path()).map_err(|source| OutputError::Io {
            path: entry.path(),
            source,
        })?;
        let kind = meta.file_type();
        if kind.is_dir() {
            out.push((rel.clone(), meta));
            collect(root, &rel, out)?;
        } else if kind.is_file() || kind.is_symlink() {
            out.push((rel, meta));
        } else {
            return Err(OutputError::UnsupportedEntry {
                path: entry.path(),
                kind: special_kind(&meta),
            });
        }
    }
    Ok(())
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

/// Passes bytes through while hashing and counting them.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
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
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
