//! Fixtures shared by the protocol tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic
#![allow(dead_code)]

use fog_protocol::{
    Address, Assignment, B256, EnvVar, InputBlob, JobSpec, Placement, Receipt, Resources, U256,
};

/// Anvil's first well-known development key (public knowledge, test only).
pub const KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const ADDR_0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// Anvil's second development key.
pub const KEY_1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
pub const ADDR_1: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

pub const NOW: u64 = 1_800_000_000;

pub fn b256(byte: u8) -> B256 {
    B256::repeat_byte(byte)
}

pub fn addr(byte: u8) -> Address {
    Address::repeat_byte(byte)
}

pub fn sample_spec() -> JobSpec {
    JobSpec {
        image: format!("sha256:{}", "ab".repeat(32)),
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "wc -l /fog/in/data.txt > /fog/out/count".into(),
        ],
        env: vec![EnvVar {
            name: "LANG".into(),
            value: "C.UTF-8".into(),
        }],
        inputs: vec![InputBlob {
            contentHash: b256(0x11),
            size: 1_024,
            path: "data.txt".into(),
        }],
        outputPath: "/fog/out".into(),
        resources: Resources {
            cpuMillicores: 500,
            memoryBytes: 64 * 1024 * 1024,
            diskBytes: 16 * 1024 * 1024,
            gpuCount: 0,
        },
        maxDurationSecs: 60,
        network: 0,
        placement: Placement {
            region: "eu-west".into(),
            labels: vec!["arch=amd64".into()],
        },
        replicas: 1,
        maxPayment: U256::from(10u64).pow(U256::from(18u64)),
        deadline: NOW + 3_600,
    }
}

pub fn sample_assignment() -> Assignment {
    Assignment {
        jobId: b256(0x01),
        specHash: sample_spec().spec_hash(),
        hub: addr(0xa1),
        miner: ADDR_1.parse().unwrap(),
        maxCharge: U256::from(5u64) * U256::from(10u64).pow(U256::from(17u64)),
    }
}

pub fn sample_receipt() -> Receipt {
    Receipt {
        jobId: b256(0x01),
        specHash: sample_spec().spec_hash(),
        hub: addr(0xa1),
        miner: ADDR_1.parse().unwrap(),
        imageId: b256(0xab),
        outputHash: b256(0x22),
        exitCode: 0,
        startedAt: NOW + 10,
        endedAt: NOW + 12,
        cpuTimeMs: 1_234,
        peakMemoryBytes: 3 * 1024 * 1024,
        amountCharged: U256::from(123_456_789u64),
    }
}
