//! EIP-712 hashing and signatures: fixed vectors, an independent encoder,
//! field sensitivity, domain binding, malleability and the JSON form.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod common;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::{SolStruct, SolValue};
use common::*;
use fog_protocol::{
    Assignment, FogStruct, JobSpec, PrivateKeySigner, Receipt, SignatureError, Signed,
    SignedReceipt, fog_domain,
};
use proptest::prelude::*;

const JOB_SPEC_TYPE: &str = "JobSpec(string image,string[] command,EnvVar[] env,InputBlob[] inputs,string outputPath,Resources resources,uint64 maxDurationSecs,uint8 network,Placement placement,uint16 replicas,uint256 maxPayment,uint64 deadline)EnvVar(string name,string value)InputBlob(bytes32 contentHash,uint64 size,string path)Placement(string region,string[] labels)Resources(uint64 cpuMillicores,uint64 memoryBytes,uint64 diskBytes,uint32 gpuCount)";
const ASSIGNMENT_TYPE: &str =
    "Assignment(bytes32 jobId,bytes32 specHash,address hub,address miner,uint256 maxCharge)";
const RECEIPT_TYPE: &str = "Receipt(bytes32 jobId,bytes32 specHash,address hub,address miner,bytes32 imageId,bytes32 outputHash,int32 exitCode,uint64 startedAt,uint64 endedAt,uint64 cpuTimeMs,uint64 peakMemoryBytes,uint256 amountCharged)";

fn key(hex: &str) -> PrivateKeySigner {
    hex.parse().unwrap()
}

fn escrow() -> Address {
    "0x5FbDB2315678afecb367f032d93F642f64180aa3"
        .parse()
        .unwrap()
}

// ---- an independent EIP-712 encoder, written from the EIP text ----------

fn word<T: SolValue>(v: T) -> B256 {
    B256::from_slice(&v.abi_encode())
}

fn hash_str(s: &str) -> B256 {
    keccak256(s.as_bytes())
}

fn hash_str_array(items: &[String]) -> B256 {
    let parts: Vec<u8> = items.iter().flat_map(|s| hash_str(s).0).collect();
    keccak256(parts)
}

fn hash_struct(type_string: &str, fields: &[B256]) -> B256 {
    let mut buf = keccak256(type_string.as_bytes()).to_vec();
    for f in fields {
        buf.extend_from_slice(f.as_slice());
    }
    keccak256(buf)
}

fn manual_spec_hash(s: &JobSpec) -> B256 {
    let env_t = "EnvVar(string name,string value)";
    let input_t = "InputBlob(bytes32 contentHash,uint64 size,string path)";
    let placement_t = "Placement(string region,string[] labels)";
    let resources_t =
        "Resources(uint64 cpuMillicores,uint64 memoryBytes,uint64 diskBytes,uint32 gpuCount)";
    let env: Vec<u8> = s
        .env
        .iter()
        .flat_map(|e| hash_struct(env_t, &[hash_str(&e.name), hash_str(&e.value)]).0)
        .collect();
    let inputs: Vec<u8> = s
        .inputs
        .iter()
        .flat_map(|i| hash_struct(input_t, &[i.contentHash, word(i.size), hash_str(&i.path)]).0)
        .collect();
    let r = &s.resources;
    let resources = hash_struct(
        resources_t,
        &[
            word(r.cpuMillicores),
            word(r.memoryBytes),
            word(r.diskBytes),
            word(r.gpuCount),
        ],
    );
    let placement = hash_struct(
        placement_t,
        &[
            hash_str(&s.placement.region),
            hash_str_array(&s.placement.labels),
        ],
    );
    hash_struct(
        JOB_SPEC_TYPE,
        &[
            hash_str(&s.image),
            hash_str_array(&s.command),
            keccak256(env),
            keccak256(inputs),
            hash_str(&s.outputPath),
            resources,
            word(s.maxDurationSecs),
            word(u16::from(s.network)),
            placement,
            word(s.replicas),
            word(s.maxPayment),
            word(s.deadline),
        ],
    )
}

fn manual_receipt_hash(r: &Receipt) -> B256 {
    hash_struct(
        RECEIPT_TYPE,
        &[
            r.jobId,
            r.specHash,
            word(r.hub),
            word(r.miner),
            r.imageId,
            r.outputHash,
            word(r.exitCode),
            word(r.startedAt),
            word(r.endedAt),
            word(r.cpuTimeMs),
            word(r.peakMemoryBytes),
            word(r.amountCharged),
        ],
    )
}

fn manual_assignment_hash(a: &Assignment) -> B256 {
    hash_struct(
        ASSIGNMENT_TYPE,
        &[
            a.jobId,
            a.specHash,
            word(a.hub),
            word(a.miner),
            word(a.maxCharge),
        ],
    )
}

fn manual_domain_separator(chain_id: u64, escrow: Address) -> B256 {
    hash_struct(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
        &[
            hash_str("Fog"),
            hash_str("1"),
            word(U256::from(chain_id)),
            word(escrow),
        ],
    )
}

fn manual_signing_hash(separator: B256, struct_hash: B256) -> B256 {
    let mut buf = vec![0x19, 0x01];
    buf.extend_from_slice(separator.as_slice());
    buf.extend_from_slice(struct_hash.as_slice());
    keccak256(buf)
}

// ---- tests -------------------------------------------------------------

#[test]
fn type_strings_are_the_documented_layout() {
    // The contracts declare these exact strings; a change here is a protocol
    // change and must bump the domain version.
    assert_eq!(JobSpec::eip712_encode_type(), JOB_SPEC_TYPE);
    assert_eq!(Assignment::eip712_encode_type(), ASSIGNMENT_TYPE);
    assert_eq!(Receipt::eip712_encode_type(), RECEIPT_TYPE);
}

#[test]
fn hashes_match_an_independent_encoder() {
    let spec = sample_spec();
    assert_eq!(spec.spec_hash(), manual_spec_hash(&spec));
    let receipt = sample_receipt();
    assert_eq!(receipt.struct_hash(), manual_receipt_hash(&receipt));
    let assignment = sample_assignment();
    assert_eq!(
        assignment.struct_hash(),
        manual_assignment_hash(&assignment)
    );

    let domain = fog_domain(31337, escrow());
    assert_eq!(domain.separator(), manual_domain_separator(31337, escrow()));
    assert_eq!(
        receipt.signing_hash(&domain),
        manual_signing_hash(domain.separator(), receipt.struct_hash())
    );
}

#[test]
fn fixed_vectors() {
    // Pinned outputs: the same spec, assignment and receipt must always give
    // these hashes; the contracts' tests pin the same values.
    let domain = fog_domain(31337, escrow());
    assert_eq!(
        sample_spec().spec_hash().to_string(),
        "0xbbab140f9a43f6f669b38370f6c2195f6bbb484f936822f8fb4414318da5aa3c"
    );
    assert_eq!(
        sample_assignment().struct_hash().to_string(),
        "0x25e1b0ec40c5476fa1c214eb419d9edff1ec798ead488bf973c70acdfdc5038e"
    );
    assert_eq!(
        sample_receipt().struct_hash().to_string(),
        "0x0d1e2832fcb6cb1c66eafbed7a3e5d26a143a2c468f4874aade5ee3a60f772fc"
    );
    assert_eq!(
        sample_receipt().signing_hash(&domain).to_string(),
        "0x8a7155ee4fc5791749396d80234cf5783c502df9fa8856b91a69fff082a96e96"
    );
    // RFC 6979 signatures are deterministic, so the signature is a vector too.
    let signed = Signed::sign(sample_receipt(), &key(KEY_1), &domain).unwrap();
    assert_eq!(
        format!("0x{}", hex::encode(signed.signature.as_bytes())),
        "0xfc23604e054005c73f35b0cd8857fdb99b82f15320368aecc82229e611d9f02d1328f393ada45a85124c512ebd99abad57f9966be87da01dae351f0dffc80dce1b"
    );
}

#[test]
fn signature_recovers_the_signer() {
    let domain = fog_domain(31337, escrow());
    let signed = Signed::sign(sample_spec(), &key(KEY_0), &domain).unwrap();
    assert_eq!(
        signed.signer(&domain).unwrap(),
        ADDR_0.parse::<Address>().unwrap()
    );

    let receipt = Signed::sign(sample_receipt(), &key(KEY_1), &domain).unwrap();
    receipt.verify(&domain).unwrap();
}

#[test]
fn receipt_signed_by_someone_else_than_its_miner_is_refused() {
    let domain = fog_domain(31337, escrow());
    let forged = Signed::sign(sample_receipt(), &key(KEY_0), &domain).unwrap();
    match forged.verify(&domain) {
        Err(SignatureError::WrongSigner { expected, actual }) => {
            assert_eq!(expected, ADDR_1.parse::<Address>().unwrap());
            assert_eq!(actual, ADDR_0.parse::<Address>().unwrap());
        }
        other => panic!("forged receipt accepted: {other:?}"),
    }
}

#[test]
fn signature_is_bound_to_chain_and_escrow() {
    let domain = fog_domain(31337, escrow());
    let signed = Signed::sign(sample_receipt(), &key(KEY_1), &domain).unwrap();
    let other_chain = fog_domain(1, escrow());
    let other_escrow = fog_domain(31337, Address::repeat_byte(0xee));
    assert!(matches!(
        signed.verify(&other_chain),
        Err(SignatureError::WrongSigner { .. })
    ));
    assert!(matches!(
        signed.verify(&other_escrow),
        Err(SignatureError::WrongSigner { .. })
    ));
}

#[test]
fn high_s_signature_is_refused() {
    let domain = fog_domain(31337, escrow());
    let signed = Signed::sign(sample_receipt(), &key(KEY_1), &domain).unwrap();
    // (r, n - s, !v) recovers the same key; the chain refuses it, so must we.
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let flipped = alloy::primitives::Signature::new(
        signed.signature.r(),
        n - signed.signature.s(),
        !signed.signature.v(),
    );
    let malleated = Signed {
        payload: signed.payload.clone(),
        signature: flipped,
    };
    assert!(matches!(
        malleated.signer(&domain),
        Err(SignatureError::Malleable)
    ));
}

#[test]
fn signed_receipt_json_round_trips_and_rejects_bad_input() {
    let domain = fog_domain(31337, escrow());
    let signed = Signed::sign(sample_receipt(), &key(KEY_1), &domain).unwrap();
    let json = serde_json::to_string(&signed).unwrap();
    let back: SignedReceipt = serde_json::from_str(&json).unwrap();
    assert_eq!(back, signed);
    back.verify(&domain).unwrap();

    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["payload"]["bonus"] = serde_json::json!(1);
    let err = serde_json::from_value::<SignedReceipt>(value).unwrap_err();
    assert!(err.to_string().contains("unknown field `bonus`"), "{err}");

    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["signature"] = serde_json::json!("0x1234");
    let err = serde_json::from_value::<SignedReceipt>(value).unwrap_err();
    assert!(err.to_string().contains("65 bytes"), "{err}");

    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["signature"] = serde_json::json!("not hex");
    let err = serde_json::from_value::<SignedReceipt>(value).unwrap_err();
    assert!(err.to_string().contains("not hex"), "{err}");
}

type Mutation = fn(&mut JobSpec);

const SPEC_MUTATIONS: &[(&str, Mutation)] = &[
    ("image", |s| s.image.push('0')),
    ("command", |s| s.command.push("x".into())),
    ("command order", |s| s.command.swap(0, 1)),
    ("env name", |s| s.env[0].name.push('X')),
    ("env value", |s| s.env[0].value.push('X')),
    ("input hash", |s| {
        s.inputs[0].contentHash = B256::repeat_byte(0x12)
    }),
    ("input size", |s| s.inputs[0].size += 1),
    ("input path", |s| s.inputs[0].path.push('2')),
    ("outputPath", |s| s.outputPath.push('2')),
    ("cpu", |s| s.resources.cpuMillicores += 1),
    ("memory", |s| s.resources.memoryBytes += 1),
    ("disk", |s| s.resources.diskBytes += 1),
    ("gpu", |s| s.resources.gpuCount += 1),
    ("duration", |s| s.maxDurationSecs += 1),
    ("network", |s| s.network = 1),
    ("region", |s| s.placement.region.clear()),
    ("labels", |s| s.placement.labels.clear()),
    ("replicas", |s| s.replicas += 1),
    ("maxPayment", |s| s.maxPayment += U256::from(1u8)),
    ("deadline", |s| s.deadline += 1),
];

#[test]
fn every_spec_field_changes_the_hash() {
    let base = sample_spec().spec_hash();
    for (name, mutate) in SPEC_MUTATIONS {
        let mut spec = sample_spec();
        mutate(&mut spec);
        assert_ne!(spec.spec_hash(), base, "changing {name} kept the hash");
    }
}

prop_compose! {
    fn any_receipt()(
        job in any::<[u8; 32]>(), spec in any::<[u8; 32]>(), hub in any::<[u8; 20]>(),
        miner in any::<[u8; 20]>(), image in any::<[u8; 32]>(), output in any::<[u8; 32]>(),
        exit in any::<i32>(), start in any::<u64>(), end in any::<u64>(), cpu in any::<u64>(),
        mem in any::<u64>(), amount in any::<[u8; 32]>(),
    ) -> Receipt {
        Receipt {
            jobId: job.into(), specHash: spec.into(), hub: hub.into(), miner: miner.into(),
            imageId: image.into(), outputHash: output.into(), exitCode: exit, startedAt: start,
            endedAt: end, cpuTimeMs: cpu, peakMemoryBytes: mem,
            amountCharged: U256::from_be_bytes(amount),
        }
    }
}

proptest! {
    #[test]
    fn receipt_hash_matches_independent_encoder(r in any_receipt()) {
        prop_assert_eq!(r.struct_hash(), manual_receipt_hash(&r));
    }

    #[test]
    fn receipt_hash_is_sensitive_to_every_field(r in any_receipt(), field in 0usize..12, bit in 0u32..8) {
        let mut m = r.clone();
        let flip = 1u8 << bit;
        match field {
            0 => m.jobId.0[0] ^= flip,
            1 => m.specHash.0[31] ^= flip,
            2 => m.hub.0[5] ^= flip,
            3 => m.miner.0[19] ^= flip,
            4 => m.imageId.0[7] ^= flip,
            5 => m.outputHash.0[9] ^= flip,
            6 => m.exitCode ^= i32::from(flip),
            7 => m.startedAt ^= u64::from(flip),
            8 => m.endedAt ^= u64::from(flip),
            9 => m.cpuTimeMs ^= u64::from(flip),
            10 => m.peakMemoryBytes ^= u64::from(flip),
            _ => m.amountCharged ^= U256::from(flip),
        }
        prop_assert_ne!(r.struct_hash(), m.struct_hash());
    }

    #[test]
    fn spec_hash_matches_independent_encoder(
        command in proptest::collection::vec(".{0,12}", 0..4),
        labels in proptest::collection::vec("[a-z]{1,4}=[a-z]{0,4}", 0..3),
        payment in any::<u128>(),
        deadline in any::<u64>(),
    ) {
        let mut spec = sample_spec();
        spec.command = command;
        spec.placement.labels = labels;
        spec.maxPayment = U256::from(payment);
        spec.deadline = deadline;
        prop_assert_eq!(spec.spec_hash(), manual_spec_hash(&spec));
    }

    #[test]
    fn any_key_signs_and_recovers(seed in any::<[u8; 32]>(), chain in 1u64..u64::MAX) {
        let Ok(signer) = PrivateKeySigner::from_slice(&seed) else { return Ok(()) };
        let domain = fog_domain(chain, escrow());
        let mut receipt = sample_receipt();
        receipt.miner = signer.address();
        let signed = Signed::sign(receipt, &signer, &domain).unwrap();
        prop_assert!(signed.verify(&domain).is_ok());
    }
}
