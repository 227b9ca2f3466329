//! The hub's database on a real SQLite file: round trips, compare-and-set
//! state changes, the constraints that keep replicas single, and reopening.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use fog_hub::store::{AssignmentRow, AssignmentState, JobState, MinerOutcome, Store, StoreError};
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
        store
            .put_blob(B256::repeat_byte(7), 42, miner)
            .await
            .unwrap();
        store
            .put_blob(B256::repeat_byte(7), 42, Address::ZERO)
            .await
            .unwrap();
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
    assert_eq!(
        store.blob(B256::repeat_byte(7)).await.unwrap(),
        Some((42, miner)),
        "first uploader kept"
    );
    assert_eq!(store.unfinished_jobs().await.unwrap().len(), 1);
}
