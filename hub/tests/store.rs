//! The hub's database on a real SQLite file: round trips, compare-and-set
//! state changes, the constraints that keep replicas single, and reopening.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use fog_hub::store::{
    AssignmentRow, AssignmentState, BlobKind, JobState, MinerOutcome, Settlement, Store, StoreError,
};
use fog_protocol::{
    Address, B256, JobSpec, PrivateKeySigner, Signature, SignedJobSpec, U256, fog_domain,
};

fn spec(replicas: u16) -> JobSpec {
    JobSpec {
        image: format!("sha256:{}", "ab".repeat(32)),
        command: vec!["true".into()],
        outputPath: "/fog/out".into(),
        resources: fog_protocol::Resources {
            cpuMillicores: 1_000,
            memoryBytes: 64 << 20,
            diskBytes: 1 << 20,
            gpuCount: 0,
        },
        maxDurationSecs: 60,
        replicas,
        maxPayment: U256::from(1_000u64),
        deadline: 4_000_000_000,
        ..Default::default()
    }
}

fn signature(spec: &JobSpec) -> Signature {
    SignedJobSpec::sign(
        spec.clone(),
        &PrivateKeySigner::random(),
        &fog_domain(1, Address::ZERO),
    )
    .unwrap()
    .signature
}

fn assignment(job: B256, replica: u16, miner: Address) -> AssignmentRow {
    AssignmentRow {
        id: format!("{job}-{replica}-{miner}"),
        job_id: job,
        replica,
        miner,
        max_charge: U256::from(500u64),
        signature: signature(&spec(1)),
        state: AssignmentState::Assigned,
        error: None,
        receipt: None,
        created_at: 1,
        updated_at: 1,
    }
}

async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&format!("sqlite://{}", dir.path().join("hub.db").display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn jobs_round_trip_and_change_state_only_from_the_expected_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let buyer = Address::repeat_byte(0xb0);
    let (job, s) = (B256::repeat_byte(1), spec(2));
    let sig = signature(&s);
    store.insert_job(job, buyer, &s, &sig).await.unwrap();
    assert!(matches!(
        store.insert_job(job, buyer, &s, &sig).await,
        Err(StoreError::JobExists(j)) if j == job
    ));
    let row = store.job(job).await.unwrap().unwrap();
    assert_eq!(
        (row.buyer, row.spec_hash, row.signature, row.state),
        (buyer, s.spec_hash(), sig, JobState::Queued)
    );
    assert_eq!(row.spec, s);

    assert!(
        !store
            .set_job_state(job, &[JobState::Running], JobState::Completed, None, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_job_state(job, &[JobState::Queued], JobState::Running, None, None)
            .await
            .unwrap()
    );
    let out = B256::repeat_byte(9);
    assert!(
        store
            .set_job_state(
                job,
                &[JobState::Running],
                JobState::Completed,
                None,
                Some(out)
            )
            .await
            .unwrap()
    );
    let row = store.job(job).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.output_hash),
        (JobState::Completed, Some(out))
    );
    assert!(store.unfinished_jobs().await.unwrap().is_empty());
    assert_eq!(store.jobs_of(buyer, None, 10).await.unwrap().len(), 1);
    assert!(
        store
            .jobs_of(Address::repeat_byte(1), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_database_refuses_two_live_assignments_of_a_replica_or_a_miner_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (job, s) = (B256::repeat_byte(2), spec(2));
    store
        .insert_job(job, Address::repeat_byte(1), &s, &signature(&s))
        .await
        .unwrap();
    let (m1, m2, m3) = (
        Address::repeat_byte(0xa1),
        Address::repeat_byte(0xa2),
        Address::repeat_byte(0xa3),
    );
    let first = assignment(job, 0, m1);
    store.insert_assignment(&first).await.unwrap();
    assert!(
        store
            .insert_assignment(&assignment(job, 0, m2))
            .await
            .is_err(),
        "replica 0 is live on m1"
    );
    assert!(
        store
            .insert_assignment(&assignment(job, 1, m1))
            .await
            .is_err(),
        "m1 already holds the job"
    );
    store
        .insert_assignment(&assignment(job, 1, m2))
        .await
        .unwrap();

    // Once lost, the replica can be placed again (on a third miner).
    let live = [AssignmentState::Assigned, AssignmentState::Running];
    assert!(
        store
            .set_assignment_state(&first.id, &live, AssignmentState::Lost, Some("gone"), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_assignment_state(&first.id, &live, AssignmentState::Finished, None, None)
            .await
            .unwrap(),
        "lost is final"
    );
    store
        .insert_assignment(&assignment(job, 0, m3))
        .await
        .unwrap();
    let rows = store.assignments_of(job).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().filter(|a| a.state.is_live()).count(), 2);
    assert_eq!(rows[0].error.as_deref(), Some("gone"));
}

#[tokio::test]
async fn logs_records_and_blobs_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (job, s) = (B256::repeat_byte(3), spec(1));
    let miner = Address::repeat_byte(0xa1);
    {
        let store = open(&dir).await;
        store
            .insert_job(job, Address::repeat_byte(1), &s, &signature(&s))
            .await
            .unwrap();
        for (i, line) in ["one\n", "two\n", "three\n"].iter().enumerate() {
            assert_eq!(
                store.append_log(job, miner, "stdout", line).await.unwrap(),
                i as i64 + 1
            );
        }
        store
            .record_outcome(miner, MinerOutcome::Completed)
            .await
            .unwrap();
        store
            .record_outcome(miner, MinerOutcome::Completed)
            .await
            .unwrap();
        store
            .record_outcome(miner, MinerOutcome::Dropped)
            .await
            .unwrap();
        for owner in [miner, Address::ZERO] {
            store
                .record_blob(B256::repeat_byte(7), 42, owner)
                .await
                .unwrap();
            store
                .add_owner(B256::repeat_byte(7), owner, 42, BlobKind::Upload)
                .await
                .unwrap();
        }
    }
    let store = open(&dir).await;
    let logs = store.logs(job, 1, 10).await.unwrap();
    assert_eq!(
        logs.iter().map(|l| l.data.as_str()).collect::<Vec<_>>(),
        ["two\n", "three\n"]
    );
    let record = store.miner_record(miner).await.unwrap();
    assert_eq!((record.completed, record.failed, record.dropped), (2, 0, 1));
    assert!(
        (record.reputation() - 0.6).abs() < 1e-9,
        "(2 + 1) / (3 + 2)"
    );
    assert_eq!(
        store
            .miner_record(Address::ZERO)
            .await
            .unwrap()
            .reputation(),
        0.5
    );
    // Each bad outcome is kept apart, and each lowers the reputation.
    let other = Address::repeat_byte(0x0d);
    for outcome in [
        MinerOutcome::Disagreed,
        MinerOutcome::TimedOut,
        MinerOutcome::Failed,
    ] {
        store.record_outcome(other, outcome).await.unwrap();
    }
    let records = store.miner_records().await.unwrap();
    let (_, r, _) = records.iter().find(|(m, _, _)| *m == other).unwrap();
    assert_eq!(
        (r.completed, r.failed, r.disagreed, r.dropped, r.timed_out),
        (0, 1, 1, 0, 1)
    );
    assert!((r.reputation() - 0.2).abs() < 1e-9, "1 / (3 + 2)");
    assert_eq!(records.len(), 2, "{records:?}");
    for owner in [miner, Address::ZERO] {
        assert_eq!(
            store
                .usable_blob(B256::repeat_byte(7), owner)
                .await
                .unwrap(),
            Some(42),
            "each uploader owns it"
        );
    }
    assert_eq!(
        store
            .usable_blob(B256::repeat_byte(7), Address::repeat_byte(9))
            .await
            .unwrap(),
        None,
        "a third key does not"
    );
    assert_eq!(store.unfinished_jobs().await.unwrap().len(), 1);
}

/// Ownership is per key, stakes count only open escrows, and the retention
/// sweep keeps what an open or recently closed job of the owner uses and
/// deletes the rest: logs of old closed jobs, lapsed ownerships, and bytes
/// nobody owns or uses.
#[tokio::test]
async fn retention_keeps_what_jobs_use_and_deletes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let alice = Address::repeat_byte(0xa1);
    let bob = Address::repeat_byte(0xb0);
    let (input, spare, shared) = (
        B256::repeat_byte(1),
        B256::repeat_byte(2),
        B256::repeat_byte(3),
    );
    for (hash, owner) in [
        (input, alice),
        (spare, alice),
        (shared, alice),
        (shared, bob),
    ] {
        store.record_blob(hash, 10, owner).await.unwrap();
        store
            .add_owner(hash, owner, 10, BlobKind::Upload)
            .await
            .unwrap();
    }
    assert_eq!(store.usage(alice).await.unwrap(), (30, 3));
    assert_eq!(store.usage(bob).await.unwrap(), (10, 1));
    assert_eq!(store.usable_blob(input, bob).await.unwrap(), None);
    assert!(store.publish_blob(input, alice).await.unwrap());
    assert!(!store.publish_blob(spare, bob).await.unwrap(), "not bob's");
    assert_eq!(store.usable_blob(input, bob).await.unwrap(), Some(10));

    // Alice's job uses `input`; its escrow is her stake until it closes.
    let job = B256::repeat_byte(0x70);
    let s = spec(1);
    store
        .insert_job(job, alice, &s, &signature(&s))
        .await
        .unwrap();
    store.link_job_blobs(job, &[input]).await.unwrap();
    store
        .add_stake(job, alice, U256::from(7u64), 4_000_000_000)
        .await
        .unwrap();
    store
        .add_stake(B256::repeat_byte(0x71), alice, U256::from(5u64), 10)
        .await
        .unwrap();
    assert_eq!(
        store.stake(alice, 100).await.unwrap(),
        U256::from(7u64),
        "the expired escrow counts nothing"
    );
    store.append_log(job, bob, "stdout", "x").await.unwrap();

    // Everything is past its unused period; the job is still open.
    let far = 3_000_000_000;
    let mut purged = store.purge(far, 0, far).await.unwrap();
    purged.blobs.sort();
    assert_eq!(purged.jobs, 0);
    assert_eq!(
        purged.blobs,
        vec![spare, shared],
        "what no open job of an owner uses"
    );
    assert!(
        store.owned_blob(input, alice).await.unwrap().is_some(),
        "the open job's input"
    );
    assert!(store.owned_blob(shared, bob).await.unwrap().is_none());

    // The job completes and settles: closed now; kept for the retention period.
    store
        .set_job_state(job, &[JobState::Queued], JobState::Completed, None, None)
        .await
        .unwrap();
    assert!(
        store.job(job).await.unwrap().unwrap().closed_at.is_none(),
        "not closed before settlement"
    );
    store
        .set_settlement(job, Settlement::Settled, None, None)
        .await
        .unwrap();
    let closed = store.job(job).await.unwrap().unwrap().closed_at.unwrap();
    assert_eq!(
        store.stake(alice, 100).await.unwrap(),
        U256::ZERO,
        "a closed job is no stake"
    );
    let kept = store.purge(far, closed - 1, far).await.unwrap();
    assert_eq!((kept.jobs, kept.blobs.len()), (0, 0), "within retention");
    assert_eq!(store.logs(job, 0, 10).await.unwrap().len(), 1);
    let gone = store.purge(far, closed + 1, far).await.unwrap();
    assert_eq!(gone.jobs, 1);
    assert_eq!(gone.blobs, vec![input]);
    assert!(store.logs(job, 0, 10).await.unwrap().is_empty());
    assert_eq!(store.usage(alice).await.unwrap(), (0, 0));
}
