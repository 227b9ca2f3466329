//! fog-protocol against the real contracts on a live anvil: the Rust hashes
//! equal the contracts' own, and receipts signed in Rust settle on chain.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::contracts::settlement_entry;
use fog_protocol::deploy::Deployment;
use fog_protocol::{
    Assignment, EnvVar, FogStruct, InputBlob, JobSpec, Placement, Receipt, Resources, Signed,
};
use fog_tests::devnet::{Devnet, JobTerms, mined};

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

fn spec(deadline: u64, replicas: u16) -> JobSpec {
    JobSpec {
        image: format!("sha256:{}", "ab".repeat(32)),
        command: vec![
            "sh".into(),
            "-c".into(),
            "sort /fog/in/x > /fog/out/y".into(),
        ],
        env: vec![
            EnvVar {
                name: "A".into(),
                value: "1".into(),
            },
            EnvVar {
                name: "B".into(),
                value: "ü∑".into(),
            },
        ],
        inputs: vec![
            InputBlob {
                contentHash: B256::repeat_byte(3),
                size: 10,
                path: "x".into(),
            },
            InputBlob {
                contentHash: B256::repeat_byte(4),
                size: 0,
                path: "dir/empty".into(),
            },
        ],
        outputPath: "/fog/out".into(),
        resources: Resources {
            cpuMillicores: 1_500,
            memoryBytes: 256 << 20,
            diskBytes: 1 << 30,
            gpuCount: 1,
        },
        maxDurationSecs: 600,
        network: 1,
        placement: Placement {
            region: "eu".into(),
            labels: vec!["a=b".into(), "c=d".into()],
        },
        replicas,
        maxPayment: ether(10),
        deadline,
    }
}

fn receipt(job_id: B256, spec_hash: B256, hub: Address, miner: Address, charged: U256) -> Receipt {
    Receipt {
        jobId: job_id,
        specHash: spec_hash,
        hub,
        miner,
        imageId: B256::repeat_byte(0xab),
        outputHash: B256::repeat_byte(0x0c),
        exitCode: -3,
        startedAt: 1,
        endedAt: 2,
        cpuTimeMs: 10,
        peakMemoryBytes: 1 << 20,
        amountCharged: charged,
    }
}

#[tokio::test]
async fn rust_hashes_equal_the_contracts_hashes() {
    let devnet = Devnet::start().await.unwrap();
    let d: &Deployment = &devnet.deployment;
    let escrow = JobEscrow::new(d.escrow, devnet.provider(devnet.treasury_key()));
    let domain = d.domain();

    assert_eq!(
        escrow.domainSeparator().call().await.unwrap(),
        domain.separator()
    );
    // The settlement window the hub and CLI count on is the escrow's own.
    assert_eq!(
        escrow.SETTLEMENT_WINDOW().call().await.unwrap(),
        alloy::primitives::U256::from(fog_protocol::SETTLEMENT_WINDOW_SECS)
    );

    for s in [spec(1_900_000_000, 3), JobSpec::default()] {
        let on_chain = escrow.hashJobSpec((&s).into()).call().await.unwrap();
        assert_eq!(on_chain, s.spec_hash(), "spec {s:?}");
    }

    let r = receipt(
        B256::repeat_byte(1),
        B256::repeat_byte(2),
        d.escrow,
        Address::repeat_byte(9),
        ether(1),
    );
    assert_eq!(
        escrow.hashReceipt((&r).into()).call().await.unwrap(),
        r.struct_hash()
    );
    assert_eq!(
        escrow
            .typedDataDigest(r.struct_hash())
            .call()
            .await
            .unwrap(),
        r.signing_hash(&domain)
    );

    let a = Assignment {
        jobId: B256::repeat_byte(1),
        specHash: B256::repeat_byte(2),
        hub: Address::repeat_byte(7),
        miner: Address::repeat_byte(9),
        maxCharge: U256::MAX,
    };
    assert_eq!(
        escrow.hashAssignment((&a).into()).call().await.unwrap(),
        a.struct_hash()
    );
}

#[tokio::test]
async fn receipts_signed_in_rust_settle_on_chain() {
    let devnet = Devnet::start().await.unwrap();
    let d = devnet.deployment.clone();
    let domain = d.domain();
    let operator = devnet.keys[1].clone();
    let hub_signer = PrivateKeySigner::random();
    let buyer = devnet.keys[2].clone();
    let miners: Vec<PrivateKeySigner> = (0..2).map(|_| PrivateKeySigner::random()).collect();

    let (hub, _) = devnet
        .register_hub(&operator, hub_signer.address(), 1_000)
        .await
        .unwrap();
    devnet.fund(buyer.address(), ether(100)).await.unwrap();
    let now = devnet.now().await.unwrap();
    let job_spec = spec(now + 3_600, 2);
    let (job_id, _) = devnet
        .open_job(
            &buyer,
            B256::repeat_byte(0x5a),
            &JobTerms {
                hub,
                spec_hash: job_spec.spec_hash(),
                replicas: 2,
                max_payment: ether(10),
                deadline: now + 3_600,
                max_duration: job_spec.maxDurationSecs,
            },
        )
        .await
        .unwrap();
    let buyer_before = devnet.balance(buyer.address()).await.unwrap();

    let entries: Vec<_> = miners
        .iter()
        .map(|m| {
            let assignment = Signed::sign(
                Assignment {
                    jobId: job_id,
                    specHash: job_spec.spec_hash(),
                    hub,
                    miner: m.address(),
                    maxCharge: ether(3),
                },
                &hub_signer,
                &domain,
            )
            .unwrap();
            let signed = Signed::sign(
                receipt(job_id, job_spec.spec_hash(), hub, m.address(), ether(2)),
                m,
                &domain,
            )
            .unwrap();
            signed.verify(&domain).unwrap();
            settlement_entry(&signed, &assignment)
        })
        .collect();

    // A stranger submits the settlement: anyone holding the signatures can.
    let stranger = devnet.keys[3].clone();
    let escrow = JobEscrow::new(d.escrow, devnet.provider(&stranger));
    let tx = mined(
        escrow
            .settle(job_id, entries.clone())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap(),
    )
    .unwrap();
    let settled: Vec<_> = tx
        .inner
        .logs()
        .iter()
        .filter_map(|log| log.log_decode::<JobEscrow::ReceiptSettled>().ok())
        .collect();
    assert_eq!(settled.len(), 2);
    let mut hashes = Vec::new();
    for (event, miner) in settled.iter().zip(&miners) {
        let r = receipt(job_id, job_spec.spec_hash(), hub, miner.address(), ether(2));
        assert_eq!(event.inner.receiptHash, r.struct_hash());
        assert_eq!(event.inner.receipt.miner, miner.address());
        hashes.push(r.struct_hash());
        assert_eq!(devnet.balance(miner.address()).await.unwrap(), ether(2));
    }
    // The evidence on chain is the commitment the events' receipts open, computed
    // here in Rust the same way.
    let commitment = alloy::primitives::keccak256(hashes.concat());
    assert_eq!(escrow.evidence(job_id).call().await.unwrap(), commitment);
    // 4 to miners, 10% commission, the rest back to the buyer.
    let commission = ether(4) / U256::from(10u8);
    assert_eq!(
        devnet.balance(hub).await.unwrap(),
        d.params.min_deposit + commission
    );
    assert_eq!(
        devnet.balance(buyer.address()).await.unwrap(),
        buyer_before + ether(10) - ether(4) - commission
    );

    // The same signatures cannot settle twice.
    let again = escrow.settle(job_id, entries).call().await.unwrap_err();
    assert!(again.to_string().contains("revert"), "{again}");
}

#[tokio::test]
async fn deployment_file_round_trips_and_rejects_garbage() {
    let devnet = Devnet::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployment.json");
    devnet.deployment.save(&path).unwrap();
    assert_eq!(Deployment::load(&path).unwrap(), devnet.deployment);

    std::fs::write(&path, r#"{"chainId": 1}"#).unwrap();
    let err = Deployment::load(&path).unwrap_err().to_string();
    assert!(err.contains("missing field"), "{err}");
    let err = Deployment::load(&dir.path().join("absent.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.json"), "{err}");
}
