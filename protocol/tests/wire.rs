//! Hub↔miner wire messages: round trips, versioning and hostile frames.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod common;

use common::*;
use fog_protocol::wire::{
    Envelope, HubMessage, LogStream, MAX_FRAME_BYTES, MinerMessage, Offer, PriceRate, WIRE_VERSION,
    WireError, decode, login_message,
};
use fog_protocol::{PrivateKeySigner, Resources, Signed, U256, fog_domain};

fn domain() -> fog_protocol::Eip712Domain {
    fog_domain(31337, addr(0xe5))
}

fn all_miner_messages() -> Vec<MinerMessage> {
    let key: PrivateKeySigner = KEY_1.parse().unwrap();
    let receipt = Signed::sign(sample_receipt(), &key, &domain()).unwrap();
    let login = key
        .sign_message_sync(login_message(addr(0xa1), 31337, b256(9)).as_bytes())
        .unwrap();
    vec![
        MinerMessage::Hello {
            miner: key.address(),
            agent: "fog-miner/0.1.0".into(),
        },
        MinerMessage::Login { signature: login },
        MinerMessage::Offer {
            offer: Offer {
                capacity: sample_spec().resources,
                rate: PriceRate {
                    per_core_hour: U256::from(10u64),
                    per_gib_hour: U256::from(2u64),
                },
                region: "eu-west".into(),
                labels: vec!["arch=amd64".into()],
                allows_network: false,
                available_until: Some(NOW + 600),
                runtime: None,
            },
        },
        MinerMessage::Heartbeat {
            seq: 7,
            free: Resources::default(),
            running: vec![b256(1)],
            services: vec![],
        },
        MinerMessage::Accepted { job_id: b256(1) },
        MinerMessage::Rejected {
            job_id: b256(1),
            reason: "below price floor".into(),
        },
        MinerMessage::Log {
            job_id: b256(1),
            stream: LogStream::Stderr,
            data: "warning\n".into(),
        },
        MinerMessage::Finished {
            failure: None,
            receipt,
            output_size: 10_240,
        },
        MinerMessage::Failed {
            job_id: b256(1),
            error: "image missing".into(),
            fault: fog_protocol::wire::Fault::Job,
        },
    ]
}

fn all_hub_messages() -> Vec<HubMessage> {
    let hub_key: PrivateKeySigner = KEY_0.parse().unwrap();
    vec![
        HubMessage::Challenge {
            hub: addr(0xa1),
            chain_id: 31337,
            nonce: b256(9),
        },
        HubMessage::Welcome {
            session: "s-1".into(),
            heartbeat_interval_ms: 5_000,
        },
        HubMessage::Assign {
            assignment: Signed::sign(sample_assignment(), &hub_key, &domain()).unwrap(),
            spec: Box::new(sample_spec()),
            auth: None,
        },
        HubMessage::Cancel {
            job_id: b256(1),
            reason: "buyer cancelled".into(),
        },
        HubMessage::Error {
            message: "bad frame".into(),
        },
    ]
}

use alloy::signers::SignerSync;

#[test]
fn every_message_round_trips() {
    for msg in all_miner_messages() {
        let frame = Envelope::new(msg.clone()).encode().unwrap();
        assert!(
            frame.starts_with(&format!("{{\"v\":{WIRE_VERSION},")),
            "{frame}"
        );
        assert_eq!(decode::<MinerMessage>(&frame).unwrap(), msg);
    }
    for msg in all_hub_messages() {
        let frame = Envelope::new(msg.clone()).encode().unwrap();
        assert_eq!(decode::<HubMessage>(&frame).unwrap(), msg);
    }
}

#[test]
fn frames_look_as_documented() {
    let frame = Envelope::new(MinerMessage::Accepted { job_id: b256(1) })
        .encode()
        .unwrap();
    assert_eq!(
        frame,
        format!(
            r#"{{"v":1,"msg":{{"type":"accepted","jobId":"{}"}}}}"#,
            b256(1)
        )
    );
}

#[test]
fn login_signature_recovers_the_miner() {
    let key: PrivateKeySigner = KEY_1.parse().unwrap();
    let msg = login_message(addr(0xa1), 31337, b256(9));
    let sig = key.sign_message_sync(msg.as_bytes()).unwrap();
    assert_eq!(
        sig.recover_address_from_msg(msg.as_bytes()).unwrap(),
        key.address()
    );
    // A login for another hub, chain or nonce recovers someone else.
    for other in [
        login_message(addr(0xa2), 31337, b256(9)),
        login_message(addr(0xa1), 1, b256(9)),
        login_message(addr(0xa1), 31337, b256(8)),
    ] {
        assert_ne!(
            sig.recover_address_from_msg(other.as_bytes()).unwrap(),
            key.address()
        );
    }
}

#[test]
fn hostile_frames_are_refused_with_reasons() {
    let newer = r#"{"v":2,"msg":{"type":"accepted","jobId":"0x00"}}"#;
    assert!(matches!(
        decode::<MinerMessage>(newer),
        Err(WireError::UnsupportedVersion { got: 2 })
    ));

    let unknown_type = r#"{"v":1,"msg":{"type":"selfDestruct"}}"#;
    let err = decode::<MinerMessage>(unknown_type)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `selfDestruct`"), "{err}");

    let extra_field = format!(
        r#"{{"v":1,"msg":{{"type":"accepted","jobId":"{}","bonus":1}}}}"#,
        b256(1)
    );
    let err = decode::<MinerMessage>(&extra_field)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `bonus`"), "{err}");

    let missing = r#"{"v":1,"msg":{"type":"accepted"}}"#;
    let err = decode::<MinerMessage>(missing).unwrap_err().to_string();
    assert!(err.contains("missing field `jobId`"), "{err}");

    assert!(matches!(
        decode::<MinerMessage>("not json"),
        Err(WireError::Malformed(_))
    ));
    assert!(matches!(
        decode::<MinerMessage>(r#"{"msg":{}}"#),
        Err(WireError::Malformed(_))
    ));

    let huge = format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(MAX_FRAME_BYTES));
    assert!(matches!(
        decode::<MinerMessage>(&huge),
        Err(WireError::TooLarge(_))
    ));
}

#[test]
fn price_rate_cost_rounds_up_and_never_overflows() {
    let rate = PriceRate {
        per_core_hour: U256::from(3_600u64),
        per_gib_hour: U256::from(3_600u64),
    };
    let one_core_one_gib = Resources {
        cpuMillicores: 1_000,
        memoryBytes: 1 << 30,
        diskBytes: 1,
        gpuCount: 0,
    };
    // One core and one GiB for one second: 1 + 1 units.
    assert_eq!(rate.cost(&one_core_one_gib, 1), U256::from(2u64));
    // A tiny job still pays at least one unit per dimension used.
    let tiny = Resources {
        cpuMillicores: 1,
        memoryBytes: 1,
        diskBytes: 1,
        gpuCount: 0,
    };
    assert_eq!(rate.cost(&tiny, 1), U256::from(2u64));
    assert_eq!(rate.cost(&tiny, 0), U256::ZERO);
    // The largest inputs stay within U256.
    let max = PriceRate {
        per_core_hour: U256::MAX,
        per_gib_hour: U256::MAX,
    };
    let huge = Resources {
        cpuMillicores: u64::MAX,
        memoryBytes: u64::MAX,
        diskBytes: u64::MAX,
        gpuCount: u32::MAX,
    };
    let cost = max.cost(&huge, u64::MAX);
    assert!(
        cost >= U256::MAX / U256::from(1u64 << 45),
        "saturated cost wrapped: {cost}"
    );
}

mod malformed {
    use fog_protocol::wire::{HubMessage, MinerMessage, decode};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Malformed frames of any shape are refused with an error, never a
        /// panic: arbitrary text, and valid envelopes with a field replaced by junk.
        #[test]
        fn malformed_frames_are_errors_never_panics(
            text in "\\PC{0,512}",
            junk in prop_oneof![
                Just(serde_json::Value::Null),
                any::<i64>().prop_map(serde_json::Value::from),
                "\\PC{0,40}".prop_map(serde_json::Value::from),
                Just(serde_json::json!([1, {"a": []}])),
                Just(serde_json::json!(1e300)),
            ],
            field in 0usize..6,
        ) {
            let _ = decode::<MinerMessage>(&text);
            let _ = decode::<HubMessage>(&text);
            let mut frame = serde_json::json!({"v": 1, "msg": {"type": "heartbeat", "seq": 1, "free": {"cpuMillicores": 1, "memoryBytes": 1, "diskBytes": 1, "gpuCount": 0}, "running": []}});
            prop_assert!(decode::<MinerMessage>(&frame.to_string()).is_ok());
            let keys = ["v", "msg", "type", "seq", "free", "running"];
            match keys[field] {
                "v" | "msg" => frame[keys[field]] = junk,
                k => frame["msg"][k] = junk,
            }
            // Junk in place of a field: an error, or a value it happens to fit.
            let _ = decode::<MinerMessage>(&frame.to_string());
        }
    }
}
