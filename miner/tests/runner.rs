//! The runner against the real Docker engine: signed receipts that say what
//! ran, several jobs at once within the offered capacity and never beyond
//! it, and assignments that are not this miner's refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Harness, assert_job_gone};
use fog_miner::admission::{Conditions, Rejection};
use fog_miner::config::Policy;
use fog_miner::runner::{RunError, Runner};
use fog_miner::schedule::Availability;
use fog_protocol::wire::PriceRate;
use fog_protocol::{
    Address, Assignment, B256, JobSpec, PrivateKeySigner, Resources, U256, fog_domain,
};

const CHAIN_ID: u64 = 31_337;

fn escrow() -> Address {
    Address::repeat_byte(0xe5)
}

fn policy(cpu_millicores: u64) -> Policy {
    Policy {
        capacity: Resources {
            cpuMillicores: cpu_millicores,
            memoryBytes: 1 << 30,
            diskBytes: 1 << 30,
            gpuCount: 0,
        },
        region: "eu".into(),
        labels: vec![],
        allow_network: false,
        availability: Availability::new(vec![]),
        max_load_per_core: None,
        // 3.6 tokens per core-hour: one millicore-second costs 1e12 base units.
        rate: PriceRate {
            per_core_hour: U256::from(3_600_000_000_000_000_000u128),
            per_gib_hour: U256::ZERO,
        },
        runtime: None,
    }
}

fn conditions() -> Conditions {
    Conditions {
        now: Utc::now(),
        chain_now: u64::try_from(Utc::now().timestamp()).unwrap(),
        load_per_core: 0.0,
    }
}

fn random_id() -> B256 {
    let mut id = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut id[..]);
    B256::from(id)
}

fn assignment(runner: &Runner, spec: &JobSpec, max_charge: U256) -> Assignment {
    Assignment {
        jobId: random_id(),
        specHash: spec.spec_hash(),
        hub: Address::repeat_byte(0x4b),
        miner: runner.address(),
        maxCharge: max_charge,
    }
}

async fn runner(cpu_millicores: u64) -> (Harness, Runner) {
    let h = Harness::new(|_| {}).await;
    let runner = Runner::new(
        h.executor.clone(),
        policy(cpu_millicores),
        PrivateKeySigner::random(),
        fog_domain(CHAIN_ID, escrow()),
    );
    (h, runner)
}

#[tokio::test]
async fn receipt_is_signed_by_the_miner_and_says_what_ran() {
    let (h, runner) = runner(2_000).await;
    let mut spec = h.spec("echo 42 > /fog/out/answer; exit 7");
    spec.maxDurationSecs = 100;
    let max_charge = U256::from(10u64).pow(U256::from(18u64));
    let a = assignment(&runner, &spec, max_charge);
    let admitted = runner.admit(a.clone(), spec.clone(), conditions()).unwrap();
    let finished = runner
        .run(admitted, &HashMap::new(), Default::default())
        .await
        .unwrap();
    h.assert_clean().await;
    assert_job_gone(runner.executor(), a.jobId);

    let receipt = &finished.receipt;
    receipt.verify(&fog_domain(CHAIN_ID, escrow())).unwrap();
    assert!(
        receipt
            .verify(&fog_domain(CHAIN_ID, Address::ZERO))
            .is_err(),
        "bound to the escrow"
    );
    let r = &receipt.payload;
    let o = &finished.outcome;
    assert_eq!(
        (r.jobId, r.specHash, r.hub, r.miner),
        (a.jobId, a.specHash, a.hub, runner.address())
    );
    assert_eq!(r.exitCode, 7);
    assert_eq!(r.outputHash, o.output.sha256);
    assert_eq!(format!("sha256:{}", alloy::hex::encode(r.imageId)), h.image);
    assert_eq!((r.startedAt, r.endedAt), (o.started_at, o.ended_at));
    assert_eq!(
        (r.cpuTimeMs, r.peakMemoryBytes),
        (o.cpu_time_ms, o.peak_memory_bytes)
    );
    // A run of a second or so out of 100 s is charged a few hundredths, pro rata.
    let secs = u64::try_from(o.wall_time.as_millis().div_ceil(1000))
        .unwrap()
        .max(1);
    assert_eq!(
        r.amountCharged,
        max_charge * U256::from(secs) / U256::from(100u64)
    );
    assert!(runner.running().is_empty());
}

#[tokio::test]
async fn runs_jobs_side_by_side_within_capacity_and_never_beyond() {
    // Room for two one-core jobs.
    let (h, runner) = runner(2_000).await;
    let max_charge = U256::from(10u64).pow(U256::from(17u64));
    let mut spec = h.spec("sleep 2; echo done > /fog/out/x");
    spec.maxDurationSecs = 60;
    let first = runner
        .admit(
            assignment(&runner, &spec, max_charge),
            spec.clone(),
            conditions(),
        )
        .unwrap();
    let second = runner
        .admit(
            assignment(&runner, &spec, max_charge),
            spec.clone(),
            conditions(),
        )
        .unwrap();
    let third = runner
        .admit(
            assignment(&runner, &spec, max_charge),
            spec.clone(),
            conditions(),
        )
        .unwrap_err();
    assert!(
        matches!(
            third,
            RunError::Rejected(Rejection::Insufficient {
                resource: "millicores of CPU",
                requested: 1_000,
                free: 0,
                offered: 2_000
            })
        ),
        "{third}"
    );
    assert_eq!(runner.capacity().free().cpuMillicores, 0);

    let started = Instant::now();
    let no_inputs = HashMap::new();
    let (a, b) = tokio::join!(
        runner.run(first, &no_inputs, Default::default()),
        runner.run(second, &no_inputs, Default::default())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let took = started.elapsed();
    // Side by side: both 2-second jobs end well before 4 seconds.
    assert!(took < Duration::from_millis(3_900), "{took:?}");
    assert_eq!(a.receipt.payload.outputHash, b.receipt.payload.outputHash);
    h.assert_clean().await;

    // The capacity came back: the job turned away before fits now.
    assert_eq!(runner.capacity().free().cpuMillicores, 2_000);
    runner
        .admit(assignment(&runner, &spec, max_charge), spec, conditions())
        .unwrap();
}

#[tokio::test]
async fn assignments_that_are_not_for_this_miner_or_spec_are_refused() {
    let (h, runner) = runner(2_000).await;
    let spec = h.spec("true");
    let max_charge = U256::from(10u64).pow(U256::from(18u64));

    let mut elsewhere = assignment(&runner, &spec, max_charge);
    elsewhere.miner = Address::repeat_byte(1);
    let err = runner
        .admit(elsewhere, spec.clone(), conditions())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the assignment names miner 0x0101"),
        "{err}"
    );

    let mut other_spec = spec.clone();
    other_spec.command = vec!["sh".into(), "-c".into(), "rm -rf /".into()];
    let err = runner
        .admit(
            assignment(&runner, &spec, max_charge),
            other_spec,
            conditions(),
        )
        .unwrap_err();
    assert!(matches!(err, RunError::SpecMismatch { .. }), "{err}");

    let a = assignment(&runner, &spec, max_charge);
    let _held = runner.admit(a.clone(), spec.clone(), conditions()).unwrap();
    let err = runner
        .admit(a.clone(), spec.clone(), conditions())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("job {} is already running on this miner", a.jobId)
    );

    // Below the floor: 30 s of one core at 1e12 per millicore-second is 3e16.
    let err = runner
        .admit(
            assignment(&runner, &spec, U256::from(1u8)),
            spec.clone(),
            conditions(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("this miner's floor for it is 30000000000000000"),
        "{err}"
    );
    assert_eq!(runner.running(), vec![a.jobId], "refusals hold nothing");
}
