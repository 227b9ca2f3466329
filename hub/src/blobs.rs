//! Content-addressed blobs on the local disk: job inputs that buyers upload
//! and output archives that miners upload, each stored under its sha256.
//!
//! An upload streams into a temporary file while being hashed and counted;
//! it is refused past the size limit or when it does not hash to what the
//! uploader claimed, and only a complete, verified file is renamed into
//! place, so a reader never sees a partial blob.

use std::path::{Path, PathBuf};

use fog_protocol::B256;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Why a blob was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob is larger than the {limit} bytes allowed")]
    TooLarge { limit: u64 },
    #[error("blob hashes to {actual}, not {expected}")]
    HashMismatch { expected: B256, actual: B256 },
    #[error("reading the upload: {0}")]
    Upload(String),
    #[error("blob store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A directory of blobs named by their sha256.
#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
    commit: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl BlobStore {
    /// Opens (creating) the store at `dir`, clearing uploads a crash left half done.
    pub fn open(dir: &Path) -> Result<Self, BlobError> {
        let tmp = dir.join("tmp");
        let io = |source| BlobError::Io {
            path: tmp.clone(),
            source,
        };
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io)?;
        }
        std::fs::create_dir_all(&tmp).map_err(io)?;
        Ok(Self {
            dir: dir.to_owned(),
            commit: Default::default(),
        })
    }

    /// Where the blob `hash` is kept (whether or not it exists).
    pub fn path(&self, hash: B256) -> PathBuf {
        self.dir.join(alloy::hex::encode(hash))
    }

    /// Streams `body` into a temporary file while hashing and counting it;
    /// refused past `limit` bytes and, with `expected`, when it hashes
    /// otherwise. The verified bytes are put in place by [`BlobStore::commit`];
    /// dropped uncommitted, they are deleted.
    pub async fn stage<S, E>(
        &self,
        mut body: S,
        limit: u64,
        expected: Option<B256>,
    ) -> Result<Staged, BlobError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut name = [0u8; 16];
        rand::Rng::fill(&mut rand::thread_rng(), &mut name);
        let tmp = self.dir.join("tmp").join(alloy::hex::encode(name));
        let io = |source| BlobError::Io {
            path: tmp.clone(),
            source,
        };
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        // From here the temporary file is the Staged's: deleted on any error.
        let mut staged = Staged {
            tmp: tmp.clone(),
            hash: B256::ZERO,
            size: 0,
        };
        let mut hasher = Sha256::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BlobError::Upload(e.to_string()))?;
            staged.size += chunk.len() as u64;
            if staged.size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        let actual = B256::from(<[u8; 32]>::from(hasher.finalize()));
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(BlobError::HashMismatch { expected, actual });
        }
        staged.hash = actual;
        Ok(staged)
    }

    /// Held while a blob is put in place and recorded, and while the
    /// retention sweep deletes blobs: the two never interleave.
    pub async fn commit_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.commit.lock().await
    }

    /// Puts verified bytes in place under their hash (call with
    /// [`BlobStore::commit_lock`] held until the blob is recorded).
    pub async fn commit(&self, mut staged: Staged) -> Result<(B256, u64), BlobError> {
        let target = self.path(staged.hash);
        tokio::fs::rename(&staged.tmp, &target)
            .await
            .map_err(|source| BlobError::Io {
                path: target.clone(),
                source,
            })?;
        staged.tmp = PathBuf::new();
        Ok((staged.hash, staged.size))
    }

    /// Deletes a blob's bytes (best effort: a missing file is already gone).
    pub async fn remove(&self, hash: B256) {
        let path = self.path(hash);
        if let Err(e) = tokio::fs::remove_file(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(blob = %hash, error = %e, "deleting a blob's bytes");
        }
    }
}

/// Verified bytes waiting to be put in place; deleted if dropped before.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    pub hash: B256,
    pub size: u64,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            // Best effort: leftovers in tmp/ are cleared at the next start.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
