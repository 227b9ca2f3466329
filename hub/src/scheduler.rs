//! Placement of job replicas on miners, and the fair queue jobs wait in.
//!
//! A miner fits a job when its free capacity (offer minus what the hub has
//! placed there) covers the resources, its availability window covers the
//! job's maximum duration, the assignment's price meets its floor, the
//! placement constraints (region, labels) hold, and its policy allows the
//! job's network access. Among fitting miners the score weighs price (cheaper
//! for the buyer is better), reputation, load (emptier is better) and data
//! locality (miners that already fetched the job's inputs).
//!
//! With many miners, scoring all of them per replica would cost O(miners).
//! The scheduler instead scores a random sample (`SAMPLE` miners, "power of
//! d choices", as Sparrow does) and falls back to a full scan only when no
//! sampled miner fits; with at most `SAMPLE` miners it always scans all.

use std::collections::{HashMap, HashSet, VecDeque};

use fog_protocol::wire::Offer;
use fog_protocol::{Address, B256, JobSpec, Resources, U256};
use rand::Rng;

/// How many miners are scored per replica before falling back to a full scan.
pub const SAMPLE: usize = 64;

/// Weights of the score's parts (each part is in [0, 1]).
const W_PRICE: f64 = 1.0;
const W_REPUTATION: f64 = 2.0;
const W_LOAD: f64 = 1.0;
const W_LOCALITY: f64 = 0.5;

/// What the scheduler knows of a connected miner.
#[derive(Clone, Debug)]
pub struct MinerSlot {
    pub offer: Offer,
    /// Offer minus what the hub has placed on the miner.
    pub free: Resources,
    pub reputation: f64,
    /// Blobs the miner has fetched before (for data locality).
    pub cached: HashSet<B256>,
}

/// One replica placement request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub spec: &'a JobSpec,
    /// What the assignment will let the miner charge.
    pub max_charge: U256,
    /// Unix seconds.
    pub now: u64,
}

/// The live miners and their free capacity.
#[derive(Debug, Default)]
pub struct Scheduler {
    slots: HashMap<Address, MinerSlot>,
    /// The same addresses, for sampling. Invariant: exactly the keys of
    /// `slots` (kept by `upsert` and `remove`), so indexing `slots` by an
    /// address from here cannot fail.
    order: Vec<Address>,
}

fn fits_in(want: &Resources, free: &Resources) -> bool {
    want.cpuMillicores <= free.cpuMillicores
        && want.memoryBytes <= free.memoryBytes
        && want.diskBytes <= free.diskBytes
        && want.gpuCount <= free.gpuCount
}

fn take(free: &mut Resources, want: &Resources) {
    free.cpuMillicores -= want.cpuMillicores;
    free.memoryBytes -= want.memoryBytes;
    free.diskBytes -= want.diskBytes;
    free.gpuCount -= want.gpuCount;
}

fn give_back(free: &mut Resources, back: &Resources, cap: &Resources) {
    free.cpuMillicores = (free.cpuMillicores + back.cpuMillicores).min(cap.cpuMillicores);
    free.memoryBytes = (free.memoryBytes + back.memoryBytes).min(cap.memoryBytes);
    free.diskBytes = (free.diskBytes + back.diskBytes).min(cap.diskBytes);
    free.gpuCount = (free.gpuCount + back.gpuCount).min(cap.gpuCount);
}

/// The spec's region, labels and network allow the miner.
fn placed(slot: &MinerSlot, spec: &JobSpec) -> bool {
    (spec.placement.region.is_empty() || spec.placement.region == slot.offer.region)
        && spec
            .placement
            .labels
            .iter()
            .all(|l| slot.offer.labels.contains(l))
        && (spec.network == 0 || slot.offer.allows_network)
}

/// What `slot` would charge for the request, if it may run it at all. The
/// cheap checks come first; the price (256-bit arithmetic) is computed once,
/// for the miners that pass them.
fn fit_cost(slot: &MinerSlot, req: &Request<'_>) -> Option<U256> {
    let spec = req.spec;
    let fits = fits_in(&spec.resources, &slot.free)
        && slot
            .offer
            .available_until
            .is_none_or(|until| until >= req.now.saturating_add(spec.maxDurationSecs))
        && placed(slot, spec);
    if !fits {
        return None;
    }
    let cost = slot.offer.rate.cost(&spec.resources, spec.maxDurationSecs);
    (cost <= req.max_charge).then_some(cost)
}

/// Higher is better; `cost` is what the miner would charge.
fn score(slot: &MinerSlot, req: &Request<'_>, cost: U256) -> f64 {
    let spec = req.spec;
    let price = if req.max_charge.is_zero() {
        1.0
    } else {
        // Share of the budget left over, in f64: precision is not needed here.
        1.0 - f64::from(cost) / f64::from(req.max_charge)
    };
    let cap = slot.offer.capacity.cpuMillicores.max(1) as f64;
    let load = slot.free.cpuMillicores as f64 / cap;
    let input_bytes: u64 = spec.inputs.iter().map(|i| i.size).sum();
    let locality = if input_bytes == 0 {
        0.0
    } else {
        let cached: u64 = spec
            .inputs
            .iter()
            .filter(|i| slot.cached.contains(&i.contentHash))
            .map(|i| i.size)
            .sum();
        cached as f64 / input_bytes as f64
    };
    W_PRICE * price + W_REPUTATION * slot.reputation + W_LOAD * load + W_LOCALITY * locality
}

impl Scheduler {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Adds a miner, or updates its offer keeping what is placed on it.
    /// `placed` is what the hub has live on it (after a reconnect).
    pub fn upsert(&mut self, miner: Address, offer: Offer, reputation: f64, placed: &[Resources]) {
        let mut free = offer.capacity.clone();
        for p in placed {
            if fits_in(p, &free) {
                take(&mut free, p);
            } else {
                free = Resources::default();
            }
        }
        // `order` mirrors the keys of `slots`: a miner not in one is in neither.
        let cached = match self.slots.remove(&miner) {
            Some(old) => old.cached,
            None => {
                self.order.push(miner);
                HashSet::new()
            }
        };
        self.slots.insert(
            miner,
            MinerSlot {
                offer,
                free,
                reputation,
                cached,
            },
        );
    }

    pub fn remove(&mut self, miner: &Address) {
        if self.slots.remove(miner).is_some()
            && let Some(i) = self.order.iter().position(|m| m == miner)
        {
            self.order.swap_remove(i);
        }
    }

    pub fn set_reputation(&mut self, miner: &Address, reputation: f64) {
        if let Some(slot) = self.slots.get_mut(miner) {
            slot.reputation = reputation;
        }
    }

    /// Remembers that `miner` fetched `blob`.
    pub fn note_cached(&mut self, miner: &Address, blob: B256) {
        if let Some(slot) = self.slots.get_mut(miner) {
            slot.cached.insert(blob);
        }
    }

    /// Takes what a replica taken back from a returning miner holds (none
    /// left free if it no longer fits, as on a reconnect).
    pub fn hold(&mut self, miner: &Address, resources: &Resources) {
        if let Some(slot) = self.slots.get_mut(miner) {
            if fits_in(resources, &slot.free) {
                take(&mut slot.free, resources);
            } else {
                slot.free = Resources::default();
            }
        }
    }

    /// Gives back what a finished or dropped replica held.
    pub fn release(&mut self, miner: &Address, resources: &Resources) {
        if let Some(slot) = self.slots.get_mut(miner) {
            give_back(&mut slot.free, resources, &slot.offer.capacity);
        }
    }

    /// Picks the best fitting miner not in `exclude` and reserves the
    /// request's resources on it.
    pub fn place(&mut self, req: &Request<'_>, exclude: &HashSet<Address>) -> Option<Address> {
        let mut best: Option<(f64, Address)> = None;
        let judge = |best: &mut Option<(f64, Address)>, m: &Address, slot: &MinerSlot| {
            if !exclude.contains(m)
                && let Some(cost) = fit_cost(slot, req)
            {
                let s = score(slot, req, cost);
                if best.is_none_or(|(b, _)| s > b) {
                    *best = Some((s, *m));
                }
            }
        };
        if self.order.len() <= SAMPLE {
            for m in &self.order {
                judge(&mut best, m, &self.slots[m]);
            }
        } else {
            let mut rng = rand::thread_rng();
            for _ in 0..SAMPLE {
                let m = &self.order[rng.gen_range(0..self.order.len())];
                judge(&mut best, m, &self.slots[m]);
            }
            if best.is_none() {
                for m in &self.order {
                    judge(&mut best, m, &self.slots[m]);
                }
            }
        }
        let (_, miner) = best?;
        let slot = self.slots.get_mut(&miner)?;
        take(&mut slot.free, &req.spec.resources);
        Some(miner)
    }

    /// How many miners could ever take `spec` (their whole offer, whatever
    /// they run now and whenever their window opens), and the largest
    /// capacity offered per resource.
    pub fn capable(&self, spec: &JobSpec) -> (u64, Resources) {
        let mut largest = Resources::default();
        let mut capable = 0;
        for slot in self.slots.values() {
            let cap = &slot.offer.capacity;
            largest.cpuMillicores = largest.cpuMillicores.max(cap.cpuMillicores);
            largest.memoryBytes = largest.memoryBytes.max(cap.memoryBytes);
            largest.diskBytes = largest.diskBytes.max(cap.diskBytes);
            largest.gpuCount = largest.gpuCount.max(cap.gpuCount);
            if fits_in(&spec.resources, cap) && placed(slot, spec) {
                capable += 1;
            }
        }
        (capable, largest)
    }

    /// Floors of the miners that could run `spec` at any price, cheapest first.
    pub fn costs(&self, spec: &JobSpec, now: u64) -> Vec<U256> {
        let req = Request {
            spec,
            max_charge: U256::MAX,
            now,
        };
        let mut costs: Vec<U256> = self
            .slots
            .values()
            .filter_map(|slot| fit_cost(slot, &req))
            .collect();
        costs.sort();
        costs
    }
}

/// Jobs waiting for miners, served round-robin across buyers so that one
/// buyer's burst cannot starve the others; each buyer's jobs in order.
#[derive(Debug, Default)]
pub struct FairQueue {
    queues: HashMap<Address, VecDeque<B256>>,
    turn: VecDeque<Address>,
    len: usize,
}

impl FairQueue {
    pub fn push(&mut self, buyer: Address, job: B256) {
        let queue = self.queues.entry(buyer).or_default();
        if queue.is_empty() {
            self.turn.push_back(buyer);
        }
        queue.push_back(job);
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes a job wherever it waits.
    pub fn remove(&mut self, buyer: &Address, job: &B256) {
        if let Some(queue) = self.queues.get_mut(buyer)
            && let Some(i) = queue.iter().position(|j| j == job)
        {
            queue.remove(i);
            self.len -= 1;
            if queue.is_empty() {
                self.queues.remove(buyer);
                self.turn.retain(|b| b != buyer);
            }
        }
    }

    /// The waiting jobs interleaved across buyers (first job of each buyer,
    /// then the second of each, …), each buyer's in order; the buyer served
    /// first this time comes last next time.
    pub fn round(&mut self) -> Vec<(Address, B256)> {
        let mut out = Vec::with_capacity(self.len);
        let mut depth = 0;
        while out.len() < self.len {
            for buyer in &self.turn {
                if let Some(job) = self.queues.get(buyer).and_then(|q| q.get(depth)) {
                    out.push((*buyer, *job));
                }
            }
            depth += 1;
        }
        if !self.turn.is_empty() {
            self.turn.rotate_left(1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use fog_protocol::wire::PriceRate;

    fn offer(cpu: u64, region: &str) -> Offer {
        Offer {
            capacity: Resources {
                cpuMillicores: cpu,
                memoryBytes: 8 << 30,
                diskBytes: 100 << 30,
                gpuCount: 0,
            },
            rate: PriceRate {
                per_core_hour: U256::from(3_600u64),
                per_gib_hour: U256::ZERO,
            },
            region: region.into(),
            labels: vec!["arch=amd64".into()],
            allows_network: false,
            available_until: None,
            runtime: None,
        }
    }

    fn spec() -> JobSpec {
        JobSpec {
            resources: Resources {
                cpuMillicores: 1_000,
                memoryBytes: 1 << 30,
                diskBytes: 1 << 30,
                gpuCount: 0,
            },
            maxDurationSecs: 100,
            replicas: 1,
            ..Default::default()
        }
    }

    fn req(spec: &JobSpec) -> Request<'_> {
        // One core for 100 s at 3,600 per core-hour costs 100.
        Request {
            spec,
            max_charge: U256::from(100u64),
            now: 1_000,
        }
    }

    fn addr(n: u8) -> Address {
        Address::repeat_byte(n)
    }

    #[test]
    fn places_only_where_everything_fits() {
        let mut s = Scheduler::new();
        s.upsert(addr(1), offer(2_000, "eu"), 0.5, &[]);
        let none = HashSet::new();
        let mut job = spec();
        assert_eq!(s.place(&req(&job), &none), Some(addr(1)));
        assert_eq!(s.place(&req(&job), &none), Some(addr(1)));
        assert_eq!(s.place(&req(&job), &none), None, "two cores, both taken");
        s.release(&addr(1), &job.resources);
        assert_eq!(s.place(&req(&job), &none), Some(addr(1)));
        s.release(&addr(1), &job.resources);

        let cheap = Request {
            max_charge: U256::from(99u64),
            ..req(&job)
        };
        assert_eq!(s.place(&cheap, &none), None, "below the floor");
        job.placement.region = "us".into();
        assert_eq!(s.place(&req(&job), &none), None, "wrong region");
        job.placement.region = "eu".into();
        job.placement.labels = vec!["gpu=a100".into()];
        assert_eq!(s.place(&req(&job), &none), None, "missing label");
        job.placement.labels = vec!["arch=amd64".into()];
        job.network = 1;
        assert_eq!(s.place(&req(&job), &none), None, "network not allowed");
        job.network = 0;
        let mut closing = offer(2_000, "eu");
        closing.available_until = Some(1_050);
        s.upsert(addr(1), closing, 0.5, &[job.resources.clone()]);
        assert_eq!(
            s.place(&req(&job), &none),
            None,
            "window closes before the job could end"
        );
        assert_eq!(
            s.place(&req(&job), &HashSet::from([addr(1)])),
            None,
            "excluded"
        );
    }

    #[test]
    fn prefers_reputation_and_free_capacity_and_honours_exclusion() {
        let mut s = Scheduler::new();
        s.upsert(addr(1), offer(4_000, "eu"), 0.2, &[]);
        s.upsert(addr(2), offer(4_000, "eu"), 0.9, &[]);
        let job = spec();
        let none = HashSet::new();
        assert_eq!(s.place(&req(&job), &none), Some(addr(2)));
        assert_eq!(
            s.place(&req(&job), &HashSet::from([addr(2)])),
            Some(addr(1))
        );
        s.remove(&addr(2));
        assert_eq!(s.len(), 1);
        assert_eq!(s.costs(&job, 1_000), vec![U256::from(100u64)]);
    }

    #[test]
    fn the_queue_interleaves_buyers_and_rotates_who_goes_first() {
        let mut q = FairQueue::default();
        let (a, b) = (addr(0xa), addr(0xb));
        let j = |n: u8| B256::repeat_byte(n);
        for n in 1..=3 {
            q.push(a, j(n));
        }
        q.push(b, j(9));
        assert_eq!(q.round(), vec![(a, j(1)), (b, j(9)), (a, j(2)), (a, j(3))]);
        assert_eq!(q.round(), vec![(b, j(9)), (a, j(1)), (a, j(2)), (a, j(3))]);
        q.remove(&b, &j(9));
        q.remove(&a, &j(2));
        assert_eq!(q.len(), 2);
        assert_eq!(q.round(), vec![(a, j(1)), (a, j(3))]);
    }
}
