//! Job spec validation, image references and network policy.
//!
//! A spec arrives from buyers over HTTP and from the hub over the wire; every
//! component validates it with [`JobSpec::validate`] before acting, and each
//! rejection names the field and what is wrong with it.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use alloy::primitives::{B256, U256};

use crate::types::{JobSpec, Resources};

/// Directory inside the container where input blobs are placed, read-only.
pub const INPUT_DIR: &str = "/fog/in";

/// Upper bounds that keep a spec within what any real machine could run and
/// what a hub can store; past them a spec is rejected as absurd.
pub mod limits {
    /// Longest image reference accepted.
    pub const MAX_IMAGE_LEN: usize = 512;
    /// Most command words.
    pub const MAX_COMMAND_ARGS: usize = 4_096;
    /// Most environment variables.
    pub const MAX_ENV_VARS: usize = 1_024;
    /// Most input blobs.
    pub const MAX_INPUTS: usize = 1_024;
    /// Longest single string (argument, env value, path).
    pub const MAX_STRING_LEN: usize = 128 * 1024;
    /// Total bytes of command, env and paths together (Linux's ARG_MAX is 2 MiB).
    pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
    /// Most CPU: 1,024 cores.
    pub const MAX_CPU_MILLICORES: u64 = 1_024_000;
    /// Least memory: below this no container runtime starts.
    pub const MIN_MEMORY_BYTES: u64 = 6 * 1024 * 1024;
    /// Most memory: 16 TiB.
    pub const MAX_MEMORY_BYTES: u64 = 16 << 40;
    /// Most disk: 64 TiB.
    pub const MAX_DISK_BYTES: u64 = 64 << 40;
    /// Most GPUs on one machine.
    pub const MAX_GPUS: u32 = 64;
    /// Longest run: 30 days.
    pub const MAX_DURATION_SECS: u64 = 30 * 24 * 3600;
    /// Most replicas (`k`).
    pub const MAX_REPLICAS: u16 = 16;
    /// Furthest deadline from now: one year.
    pub const MAX_DEADLINE_HORIZON_SECS: u64 = 365 * 24 * 3600;
    /// Most placement labels.
    pub const MAX_LABELS: usize = 64;
    /// Longest region or label.
    pub const MAX_LABEL_LEN: usize = 128;
}

/// Whether the container may reach the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum NetworkPolicy {
    /// No network interface beyond loopback (the default).
    #[default]
    None = 0,
    /// Outbound connections allowed, if the miner's policy allows them too.
    Outbound = 1,
}

impl TryFrom<u8> for NetworkPolicy {
    type Error = SpecError;
    fn try_from(value: u8) -> Result<Self, SpecError> {
        match value {
            0 => Ok(Self::None),
            1 => Ok(Self::Outbound),
            other => Err(SpecError::UnknownNetworkPolicy(other)),
        }
    }
}

/// A validated image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ImageRef {
    /// An image already present on the miner, by its id (`sha256:<hex>`).
    LocalId(B256),
    /// A registry reference pinned by manifest digest; pulled by digest.
    Pinned {
        /// `[host[:port]/]path`, e.g. `127.0.0.1:5000/fog/busybox`.
        repository: String,
        /// Informational tag; the digest decides what runs.
        tag: Option<String>,
        digest: B256,
    },
}

impl ImageRef {
    /// The digest the image is pinned to (id or manifest digest).
    pub fn digest(&self) -> B256 {
        match self {
            Self::LocalId(id) => *id,
            Self::Pinned { digest, .. } => *digest,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocalId(id) => write!(f, "sha256:{}", hex::encode(id)),
            Self::Pinned {
                repository,
                tag,
                digest,
            } => {
                write!(f, "{repository}")?;
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                write!(f, "@sha256:{}", hex::encode(digest))
            }
        }
    }
}

impl FromStr for ImageRef {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::InvalidImage {
            image: s.chars().take(80).collect(),
            reason: reason.to_owned(),
        };
        if s.is_empty() {
            return Err(SpecError::EmptyImage);
        }
        if s.len() > limits::MAX_IMAGE_LEN {
            return Err(bad("longer than 512 bytes"));
        }
        if let Some(id) = s.strip_prefix("sha256:") {
            return Ok(Self::LocalId(parse_digest(id).map_err(|r| bad(&r))?));
        }
        let Some((name, digest)) = s.split_once("@sha256:") else {
            return Err(bad(
                "must be pinned by digest (name@sha256:<64 hex>) or be a local image id (sha256:<64 hex>)",
            ));
        };
        let digest = parse_digest(digest).map_err(|r| bad(&r))?;
        // A colon after the last slash separates the tag; one before it is a
        // registry port.
        let (repository, tag) = match name.rfind(':') {
            Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
            _ => (name, None),
        };
        validate_repository(repository).map_err(|r| bad(&r))?;
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !ok {
                return Err(bad(
                    "tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        Ok(Self::Pinned {
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

fn parse_digest(hex_digest: &str) -> Result<B256, String> {
    if hex_digest.len() != 64
        || !hex_digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("digest must be 64 lowercase hex characters".into());
    }
    hex_digest
        .parse::<B256>()
        .map_err(|e| format!("digest: {e}"))
}

/// Checks `[host[:port]/]component(/component)*` as the Docker reference
/// grammar has it: lowercase path components separated by `.`, `_`, `__` or `-`.
fn validate_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("repository name is empty".into());
    }
    let mut parts: Vec<&str> = repository.split('/').collect();
    let first_is_host = parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
    if first_is_host {
        let host = parts.remove(0);
        let (name, port) = match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        let host_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        if !host_ok {
            return Err(format!("registry host {host:?} is not a valid host name"));
        }
        if let Some(port) = port
            && port.parse::<u16>().is_err()
        {
            return Err(format!("registry port {port:?} is not a port number"));
        }
    }
    for part in parts {
        let valid = !part.is_empty()
            && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && !part.contains("..")
            && !part.contains("___");
        if !valid {
            return Err(format!(
                "path component {part:?} must be lowercase letters and digits separated by . _ or -"
            ));
        }
    }
    Ok(())
}

/// Why a job spec was rejected. Each variant names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("image: must not be empty")]
    EmptyImage,
    #[error("image {image:?}: {reason}")]
    InvalidImage { image: String, reason: String },
    #[error("command: {0} words, at most {max} allowed", max = limits::MAX_COMMAND_ARGS)]
    TooManyArgs(usize),
    #[error("{field}: contains a NUL byte")]
    NulByte { field: String },
    #[error("{field}: {len} bytes, at most {max} allowed")]
    StringTooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("command, env and paths together take {0} bytes, at most {max} allowed", max = limits::MAX_TEXT_BYTES)]
    TextTooLarge(usize),
    #[error("env: {0} variables, at most {max} allowed", max = limits::MAX_ENV_VARS)]
    TooManyEnvVars(usize),
    #[error("env[{index}]: name {name:?} must match [A-Za-z_][A-Za-z0-9_]*")]
    InvalidEnvName { index: usize, name: String },
    #[error("env: variable {0:?} is set twice")]
    DuplicateEnv(String),
    #[error("inputs: {0} blobs, at most {max} allowed", max = limits::MAX_INPUTS)]
    TooManyInputs(usize),
    #[error("inputs[{index}].path {path:?}: {reason}")]
    InvalidInputPath {
        index: usize,
        path: String,
        reason: &'static str,
    },
    #[error("inputs: path {0:?} is used twice")]
    DuplicateInputPath(String),
    #[error("inputs: total size {total} bytes exceeds the job's disk of {disk} bytes")]
    InputsExceedDisk { total: u128, disk: u64 },
    #[error("outputPath {path:?}: {reason}")]
    InvalidOutputPath { path: String, reason: &'static str },
    #[error("resources.{field}: must be greater than zero")]
    ZeroResource { field: &'static str },
    #[error("resources.{field}: {value} is out of range ({min}..={max})")]
    ResourceOutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("maxDurationSecs: must be greater than zero")]
    ZeroDuration,
    #[error("maxDurationSecs: {0} s is longer than the {max} s allowed", max = limits::MAX_DURATION_SECS)]
    DurationTooLong(u64),
    #[error("network: unknown policy {0} (0 = none, 1 = outbound)")]
    UnknownNetworkPolicy(u8),
    #[error("placement: {0}")]
    InvalidPlacement(String),
    #[error("replicas: must be at least 1")]
    ZeroReplicas,
    #[error("replicas: {0} is more than the {max} allowed", max = limits::MAX_REPLICAS)]
    TooManyReplicas(u16),
    #[error("maxPayment: must be greater than zero")]
    ZeroPayment,
    #[error("deadline {deadline} is not in the future (now is {now})")]
    DeadlinePassed { deadline: u64, now: u64 },
    #[error("deadline {deadline} is more than a year after now ({now})")]
    DeadlineTooFar { deadline: u64, now: u64 },
}

impl JobSpec {
    /// The image reference, parsed.
    pub fn image_ref(&self) -> Result<ImageRef, SpecError> {
        self.image.parse()
    }

    /// The network policy, parsed.
    pub fn network_policy(&self) -> Result<NetworkPolicy, SpecError> {
        NetworkPolicy::try_from(self.network)
    }

    /// Checks every field; `now` is the current Unix time in seconds.
    pub fn validate(&self, now: u64) -> Result<(), SpecError> {
        self.image_ref()?;
        self.validate_text()?;
        validate_resources(&self.resources)?;
        self.validate_inputs()?;
        validate_output_path(&self.outputPath)?;
        if self.maxDurationSecs == 0 {
            return Err(SpecError::ZeroDuration);
        }
        if self.maxDurationSecs > limits::MAX_DURATION_SECS {
            return Err(SpecError::DurationTooLong(self.maxDurationSecs));
        }
        self.network_policy()?;
        self.validate_placement()?;
        if self.replicas == 0 {
            return Err(SpecError::ZeroReplicas);
        }
        if self.replicas > limits::MAX_REPLICAS {
            return Err(SpecError::TooManyReplicas(self.replicas));
        }
        if self.maxPayment == U256::ZERO {
            return Err(SpecError::ZeroPayment);
        }
        if self.deadline <= now {
            return Err(SpecError::DeadlinePassed {
                deadline: self.deadline,
                now,
            });
        }
        if self.deadline - now > limits::MAX_DEADLINE_HORIZON_SECS {
            return Err(SpecError::DeadlineTooFar {
                deadline: self.deadline,
                now,
            });
        }
        Ok(())
    }

    pub(crate) fn validate_text(&self) -> Result<(), SpecError> {
        if self.command.len() > limits::MAX_COMMAND_ARGS {
            return Err(SpecError::TooManyArgs(self.command.len()));
        }
        if self.env.len() > limits::MAX_ENV_VARS {
            return Err(SpecError::TooManyEnvVars(self.env.len()));
        }
        let mut total = 0usize;
        for (i, arg) in self.command.iter().enumerate() {
            total += check_string(&format!("command[{i}]"), arg)?;
        }
        let mut names = HashSet::new();
        for (i, var) in self.env.iter().enumerate() {
            let name_ok = var
                .name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && var
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && var.name.len() <= limits::MAX_LABEL_LEN;
            if !name_ok {
                return Err(SpecError::InvalidEnvName {
                    index: i,
                    name: var.name.chars().take(80).collect(),
                });
            }
            if !names.insert(var.name.as_str()) {
                return Err(SpecError::DuplicateEnv(var.name.clone()));
            }
            total += var.name.len() + check_string(&format!("env[{i}].value"), &var.value)?;
        }
        total += self.inputs.iter().map(|b| b.path.len()).sum::<usize>() + self.outputPath.len();
        if total > limits::MAX_TEXT_BYTES {
            return Err(SpecError::TextTooLarge(total));
        }
        Ok(())
    }

    fn validate_inputs(&self) -> Result<(), SpecError> {
        if self.inputs.len() > limits::MAX_INPUTS {
            return Err(SpecError::TooManyInputs(self.inputs.len()));
        }
        let mut paths = HashSet::new();
        let mut total: u128 = 0;
        for (index, input) in self.inputs.iter().enumerate() {
            let bad = |reason| SpecError::InvalidInputPath {
                index,
                path: input.path.chars().take(80).collect(),
                reason,
            };
            check_string(&format!("inputs[{index}].path"), &input.path)?;
            if input.path.is_empty() {
                return Err(bad("must not be empty"));
            }
            if input.path.starts_with('/') {
                return Err(bad("must be relative to the input directory /fog/in"));
            }
            if input
                .path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(bad("must not contain empty, '.' or '..' components"));
            }
            if !paths.insert(input.path.as_str()) {
                return Err(SpecError::DuplicateInputPath(input.path.clone()));
            }
            total += u128::from(input.size);
        }
        if total > u128::from(self.resources.diskBytes) {
            return Err(SpecError::InputsExceedDisk {
                total,
                disk: self.resources.diskBytes,
            });
        }
        Ok(())
    }

    pub(crate) fn validate_placement(&self) -> Result<(), SpecError> {
        let placement = &self.placement;
        let label_ok = |s: &str| {
            s.len() <= limits::MAX_LABEL_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        };
        if !label_ok(&placement.region) {
            return Err(SpecError::InvalidPlacement(format!(
                "region {:?} must be at most {} of [A-Za-z0-9-_./]",
                placement.region.chars().take(80).collect::<String>(),
                limits::MAX_LABEL_LEN
            )));
        }
        if placement.labels.len() > limits::MAX_LABELS {
            return Err(SpecError::InvalidPlacement(format!(
                "{} labels, at most {} allowed",
                placement.labels.len(),
                limits::MAX_LABELS
            )));
        }
        for label in &placement.labels {
            let ok = match label.split_once('=') {
                Some((k, v)) => !k.is_empty() && label_ok(k) && label_ok(v),
                None => false,
            };
            if !ok {
                return Err(SpecError::InvalidPlacement(format!(
                    "label {:?} must be key=value with [A-Za-z0-9-_./] on both sides",
                    label.chars().take(80).collect::<String>()
                )));
            }
        }
        Ok(())
    }
}

fn check_string(field: &str, value: &str) -> Result<usize, SpecError> {
    if value.len() > limits::MAX_STRING_LEN {
        return Err(SpecError::StringTooLong {
            field: field.to_owned(),
            len: value.len(),
            max: limits::MAX_STRING_LEN,
        });
    }
    if value.contains('\0') {
        return Err(SpecError::NulByte {
            field: field.to_owned(),
        });
    }
    Ok(value.len())
}

fn validate_output_path(path: &str) -> Result<(), SpecError> {
    let bad = |reason| SpecError::InvalidOutputPath {
        path: path.chars().take(80).collect(),
        reason,
    };
    check_string("outputPath", path)?;
    if !path.starts_with('/') {
        return Err(bad("must be an absolute path inside the container"));
    }
    let components: Vec<&str> = path.split('/').skip(1).collect();
    if components.iter().all(|c| c.is_empty()) {
        return Err(bad("must not be the root directory"));
    }
    if components
        .iter()
        .enumerate()
        .any(|(i, c)| (c.is_empty() && i + 1 != components.len()) || *c == "." || *c == "..")
    {
        return Err(bad("must be normalised: no empty, '.' or '..' components"));
    }
    if path == INPUT_DIR || path.starts_with(&format!("{INPUT_DIR}/")) {
        return Err(bad(
            "must not be inside the read-only input directory /fog/in",
        ));
    }
    Ok(())
}

pub(crate) fn validate_resources(r: &Resources) -> Result<(), SpecError> {
    let ranged = |field, value: u64, min: u64, max: u64| {
        if value == 0 {
            Err(SpecError::ZeroResource { field })
        } else if value < min || value > max {
            Err(SpecError::ResourceOutOfRange {
                field,
                value,
                min,
                max,
            })
        } else {
            Ok(())
        }
    };
    ranged(
        "cpuMillicores",
        r.cpuMillicores,
        1,
        limits::MAX_CPU_MILLICORES,
    )?;
    ranged(
        "memoryBytes",
        r.memoryBytes,
        limits::MIN_MEMORY_BYTES,
        limits::MAX_MEMORY_BYTES,
    )?;
    ranged("diskBytes", r.diskBytes, 1, limits::MAX_DISK_BYTES)?;
    if r.gpuCount > limits::MAX_GPUS {
        return Err(SpecError::ResourceOutOfRange {
            field: "gpuCount",
            value: u64::from(r.gpuCount),
            min: 0,
            max: u64::from(limits::MAX_GPUS),
        });
    }
    Ok(())
}
