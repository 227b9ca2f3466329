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
        })
    }

    /// Where the blob `hash` is kept (whether or not it exists).
    pub fn path(&self, hash: B256) -> PathBuf {
        self.dir.join(alloy::hex::encode(hash))
    }

    /// Streams `body` into the store; returns its hash and size. With
    /// `expected`, a body that hashes otherwise is refused and not kept.
    pub async fn put<S, E>(
        &self,
        mut body: S,
        limit: u64,
        expected: Option<B256>,
    ) -> Result<(B256, u64), BlobError>
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
        let result = async {
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| BlobError::Upload(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
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
            Ok((actual, size))
        }
        .await;
        match result {
            Ok((hash, size)) => {
                let target = self.path(hash);
                tokio::fs::rename(&tmp, &target)
                    .await
                    .map_err(|source| BlobError::Io {
                        path: target.clone(),
                        source,
                    })?;
                Ok((hash, size))
            }
            Err(e) => {
                // The failure is what matters; a leftover temp file is cleared at the next start.
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }
}
