//! Admission: whether this miner takes a job now, with a stated reason when
//! it does not, and a capacity ledger that never overcommits the offer.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use fog_protocol::{JobSpec, NetworkPolicy, Resources, SpecError, U256};

use crate::config::Policy;

/// Why a job was turned down.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] SpecError),
    #[error("outside the miner's availability windows{}", next_open.map(|t| format!("; next opens at {t}")).unwrap_or_default())]
    OutsideWindow { next_open: Option<DateTime<Utc>> },
    #[error("the host is busy: load {load:.2} per core is above the {max:.2} allowed")]
    HostBusy { load: f64, max: f64 },
    #[error("pays {offered} but this miner's floor for it is {floor} (base units)")]
    BelowFloor { offered: U256, floor: U256 },
    #[error("needs {requested} {resource} but only {free} of {offered} offered is free")]
    Insufficient {
        resource: &'static str,
        requested: u64,
        free: u64,
        offered: u64,
    },
    #[error("asks for network access, which this miner does not allow")]
    NetworkNotAllowed,
    #[error("must run in region {wanted:?}; this miner is in {have:?}")]
    WrongRegion { wanted: String, have: String },
    #[error("needs label {0:?}, which this miner does not carry")]
    MissingLabel(String),
}

#[derive(Debug)]
struct Ledger {
    offered: Resources,
    used: Mutex<Resources>,
}

/// The miner's offered capacity and what running jobs hold of it.
#[derive(Clone, Debug)]
pub struct Capacity {
    ledger: Arc<Ledger>,
}

/// Capacity held by one job; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    ledger: Arc<Ledger>,
    held: Resources,
}

impl Reservation {
    pub fn resources(&self) -> &Resources {
        &self.held
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // A poisoned lock still holds consistent numbers: every update is a single assignment.
        let mut used = self
            .ledger
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        used.cpuMillicores -= self.held.cpuMillicores;
        used.memoryBytes -= self.held.memoryBytes;
        used.diskBytes -= self.held.diskBytes;
        used.gpuCount -= self.held.gpuCount;
    }
}

impl Capacity {
    pub fn new(offered: Resources) -> Self {
        Self {
            ledger: Arc::new(Ledger {
                offered,
                used: Mutex::new(Resources::default()),
            }),
        }
    }

    /// What is free now.
    pub fn free(&self) -> Resources {
        let used = self
            .ledger
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let o = &self.ledger.offered;
        Resources {
            cpuMillicores: o.cpuMillicores - used.cpuMillicores,
            memoryBytes: o.memoryBytes - used.memoryBytes,
            diskBytes: o.diskBytes - used.diskBytes,
            gpuCount: o.gpuCount - used.gpuCount,
        }
    }

    /// Reserves `want` atomically, or says which resource is short.
    pub fn try_reserve(&self, want: &Resources) -> Result<Reservation, Rejection> {
        let mut used = self
            .ledger
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let o = &self.ledger.offered;
        let checks = [
            (
                "millicores of CPU",
                want.cpuMillicores,
                used.cpuMillicores,
                o.cpuMillicores,
            ),
            (
                "bytes of memory",
                want.memoryBytes,
                used.memoryBytes,
                o.memoryBytes,
            ),
            ("bytes of disk", want.diskBytes, used.diskBytes, o.diskBytes),
            (
                "GPUs",
                u64::from(want.gpuCount),
                u64::from(used.gpuCount),
                u64::from(o.gpuCount),
            ),
        ];
        for (resource, requested, in_use, offered) in checks {
            let free = offered - in_use;
            if requested > free {
                return Err(Rejection::Insufficient {
                    resource,
                    requested,
                    free,
                    offered,
                });
            }
        }
        used.cpuMillicores += want.cpuMillicores;
        used.memoryBytes += want.memoryBytes;
        used.diskBytes += want.diskBytes;
        used.gpuCount += want.gpuCount;
        Ok(Reservation {
            ledger: Arc::clone(&self.ledger),
            held: want.clone(),
        })
    }
}

/// Everything admission looks at besides the job.
#[derive(Clone, Copy, Debug)]
pub struct Conditions {
    /// The machine's wall time: availability windows are local hours.
    pub now: DateTime<Utc>,
    /// The chain's time (Unix seconds): deadlines are the escrow's.
    pub chain_now: u64,
    /// The host's one-minute load average divided by its cores.
    pub load_per_core: f64,
}

/// Decides whether to take a job whose assignment lets this miner charge up
/// to `max_charge`, and reserves its resources if so.
pub fn admit(
    policy: &Policy,
    capacity: &Capacity,
    spec: &JobSpec,
    max_charge: U256,
    at: Conditions,
) -> Result<Reservation, Rejection> {
    spec.validate(at.chain_now)?;
    if spec.network_policy()? != NetworkPolicy::None && !policy.allow_network {
        return Err(Rejection::NetworkNotAllowed);
    }
    let wanted = &spec.placement.region;
    if !wanted.is_empty() && *wanted != policy.region {
        return Err(Rejection::WrongRegion {
            wanted: wanted.clone(),
            have: policy.region.clone(),
        });
    }
    if let Some(missing) = spec
        .placement
        .labels
        .iter()
        .find(|l| !policy.labels.contains(l))
    {
        return Err(Rejection::MissingLabel(missing.clone()));
    }
    if !policy.availability.is_open(at.now) {
        return Err(Rejection::OutsideWindow {
            next_open: policy.availability.next_open(at.now),
        });
    }
    if let Some(max) = policy.max_load_per_core
        && at.load_per_core > max
    {
        return Err(Rejection::HostBusy {
            load: at.load_per_core,
            max,
        });
    }
    let floor = policy.floor_for(&spec.resources, spec.maxDurationSecs);
    if max_charge < floor {
        return Err(Rejection::BelowFloor {
            offered: max_charge,
            floor,
        });
    }
    capacity.try_reserve(&spec.resources)
}
