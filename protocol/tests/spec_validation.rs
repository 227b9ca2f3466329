//! JobSpec validation: the sample passes; each bad input is rejected with
//! its own error, whose message names the field.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod common;

use common::*;
use fog_protocol::spec::limits;
use fog_protocol::{EnvVar, ImageRef, InputBlob, JobSpec, NetworkPolicy, SpecError, U256};
use proptest::prelude::*;

fn rejects(mutate: impl FnOnce(&mut JobSpec)) -> SpecError {
    let mut spec = sample_spec();
    mutate(&mut spec);
    spec.validate(NOW).expect_err("bad spec accepted")
}

#[test]
fn sample_spec_is_valid() {
    sample_spec().validate(NOW).unwrap();
}

#[test]
fn each_bad_input_has_its_own_error_and_message() {
    type Case = (&'static str, fn(&mut JobSpec), &'static str);
    let cases: &[Case] = &[
        (
            "empty image",
            |s| s.image.clear(),
            "image: must not be empty",
        ),
        (
            "unpinned image",
            |s| s.image = "busybox:latest".into(),
            "must be pinned by digest",
        ),
        (
            "short digest",
            |s| s.image = "sha256:abc".into(),
            "64 lowercase hex",
        ),
        (
            "upper-case repo",
            |s| s.image = format!("Busybox@sha256:{}", "a".repeat(64)),
            "path component",
        ),
        (
            "bad tag",
            |s| s.image = format!("busybox:-x@sha256:{}", "a".repeat(64)),
            "tag must be",
        ),
        (
            "bad port",
            |s| s.image = format!("localhost:99999/b@sha256:{}", "a".repeat(64)),
            "not a port number",
        ),
        (
            "NUL in arg",
            |s| s.command[0].push('\0'),
            "command[0]: contains a NUL byte",
        ),
        (
            "huge arg",
            |s| s.command[2] = "x".repeat(limits::MAX_STRING_LEN + 1),
            "command[2]:",
        ),
        (
            "too many args",
            |s| s.command = vec!["a".into(); limits::MAX_COMMAND_ARGS + 1],
            "command: 4097 words",
        ),
        (
            "total text",
            |s| s.command = vec!["y".repeat(100_000); 12],
            "together take",
        ),
        (
            "bad env name",
            |s| s.env[0].name = "1X".into(),
            "env[0]: name \"1X\"",
        ),
        ("empty env name", |s| s.env[0].name.clear(), "env[0]: name"),
        (
            "duplicate env",
            |s| s.env.push(s.env[0].clone()),
            "variable \"LANG\" is set twice",
        ),
        (
            "NUL in env",
            |s| s.env[0].value.push('\0'),
            "env[0].value: contains a NUL byte",
        ),
        (
            "too many env",
            |s| {
                s.env = (0..=limits::MAX_ENV_VARS)
                    .map(|i| EnvVar {
                        name: format!("V{i}"),
                        value: String::new(),
                    })
                    .collect()
            },
            "env: 1025 variables",
        ),
        (
            "absolute input",
            |s| s.inputs[0].path = "/etc/passwd".into(),
            "must be relative",
        ),
        (
            "escaping input",
            |s| s.inputs[0].path = "a/../../x".into(),
            "'..'",
        ),
        (
            "empty input path",
            |s| s.inputs[0].path.clear(),
            "must not be empty",
        ),
        (
            "duplicate input",
            |s| s.inputs.push(s.inputs[0].clone()),
            "path \"data.txt\" is used twice",
        ),
        (
            "inputs over disk",
            |s| s.inputs[0].size = s.resources.diskBytes + 1,
            "exceeds the job's disk",
        ),
        (
            "too many inputs",
            |s| {
                s.inputs = (0..=limits::MAX_INPUTS)
                    .map(|i| InputBlob {
                        path: format!("f{i}"),
                        ..Default::default()
                    })
                    .collect()
            },
            "inputs: 1025 blobs",
        ),
        (
            "relative output",
            |s| s.outputPath = "out".into(),
            "must be an absolute path",
        ),
        (
            "root output",
            |s| s.outputPath = "/".into(),
            "must not be the root",
        ),
        (
            "dotdot output",
            |s| s.outputPath = "/fog/../etc".into(),
            "must be normalised",
        ),
        (
            "output in inputs",
            |s| s.outputPath = "/fog/in/x".into(),
            "read-only input directory",
        ),
        (
            "zero cpu",
            |s| s.resources.cpuMillicores = 0,
            "resources.cpuMillicores: must be greater than zero",
        ),
        (
            "zero memory",
            |s| s.resources.memoryBytes = 0,
            "resources.memoryBytes: must be greater than zero",
        ),
        (
            "zero disk",
            |s| s.resources.diskBytes = 0,
            "resources.diskBytes: must be greater than zero",
        ),
        (
            "absurd cpu",
            |s| s.resources.cpuMillicores = u64::MAX,
            "resources.cpuMillicores: 18446744073709551615 is out of range",
        ),
        (
            "tiny memory",
            |s| s.resources.memoryBytes = 1024,
            "resources.memoryBytes: 1024 is out of range",
        ),
        (
            "absurd memory",
            |s| s.resources.memoryBytes = u64::MAX,
            "resources.memoryBytes:",
        ),
        (
            "absurd disk",
            |s| s.resources.diskBytes = u64::MAX,
            "resources.diskBytes:",
        ),
        (
            "absurd gpus",
            |s| s.resources.gpuCount = 1_000,
            "resources.gpuCount: 1000",
        ),
        (
            "zero duration",
            |s| s.maxDurationSecs = 0,
            "maxDurationSecs: must be greater than zero",
        ),
        (
            "absurd duration",
            |s| s.maxDurationSecs = u64::MAX,
            "maxDurationSecs: 18446744073709551615 s",
        ),
        ("network 7", |s| s.network = 7, "network: unknown policy 7"),
        (
            "bad region",
            |s| s.placement.region = "eu west".into(),
            "placement: region",
        ),
        (
            "bad label",
            |s| s.placement.labels = vec!["novalue".into()],
            "placement: label \"novalue\"",
        ),
        (
            "zero replicas",
            |s| s.replicas = 0,
            "replicas: must be at least 1",
        ),
        (
            "absurd replicas",
            |s| s.replicas = u16::MAX,
            "replicas: 65535",
        ),
        (
            "zero payment",
            |s| s.maxPayment = U256::ZERO,
            "maxPayment: must be greater than zero",
        ),
        (
            "past deadline",
            |s| s.deadline = NOW - 1,
            "is not in the future",
        ),
        ("deadline now", |s| s.deadline = NOW, "is not in the future"),
        (
            "far deadline",
            |s| s.deadline = NOW + 2 * 365 * 24 * 3600,
            "more than a year",
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (name, mutate, expected) in cases {
        let message = rejects(*mutate).to_string();
        assert!(
            message.contains(expected),
            "{name}: message {message:?} does not contain {expected:?}"
        );
        seen.insert(message);
    }
    // Distinct inputs give distinct messages: a reader can tell what to fix.
    assert_eq!(seen.len(), cases.len(), "two cases gave the same message");
}

#[test]
fn image_references_parse() {
    let digest = "0123456789abcdef".repeat(4);
    let ok = [
        format!("sha256:{digest}"),
        format!("busybox@sha256:{digest}"),
        format!("library/busybox:1.36@sha256:{digest}"),
        format!("127.0.0.1:5000/fog/busy_box-x:v1.0@sha256:{digest}"),
        format!("localhost/fog@sha256:{digest}"),
        format!("registry.example.org/a/b/c@sha256:{digest}"),
    ];
    for s in &ok {
        let parsed: ImageRef = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(&parsed.to_string(), s, "round trip");
        assert_eq!(parsed.digest().to_string(), format!("0x{digest}"));
    }
    let parsed: ImageRef = format!("127.0.0.1:5000/fog/busybox:v1@sha256:{digest}")
        .parse()
        .unwrap();
    assert_eq!(
        parsed,
        ImageRef::Pinned {
            repository: "127.0.0.1:5000/fog/busybox".into(),
            tag: Some("v1".into()),
            digest: format!("0x{digest}").parse().unwrap()
        }
    );
    let bad = [
        "busybox".to_owned(),
        format!("busybox@sha256:{}", digest.to_uppercase()),
        format!("@sha256:{digest}"),
        format!("a//b@sha256:{digest}"),
        format!("a/-b@sha256:{digest}"),
        format!("exa mple/b@sha256:{digest}"),
        format!("b:@sha256:{digest}"),
        format!("sha256:{digest}0"),
        "x".repeat(600),
    ];
    for s in &bad {
        assert!(s.parse::<ImageRef>().is_err(), "{s} accepted");
    }
}

#[test]
fn network_policy_values() {
    assert_eq!(NetworkPolicy::try_from(0).unwrap(), NetworkPolicy::None);
    assert_eq!(NetworkPolicy::try_from(1).unwrap(), NetworkPolicy::Outbound);
    assert_eq!(NetworkPolicy::default(), NetworkPolicy::None);
    assert!(NetworkPolicy::try_from(2).is_err());
}

#[test]
fn json_rejects_unknown_and_negative_fields() {
    let json = serde_json::to_value(sample_spec()).unwrap();

    let mut unknown = json.clone();
    unknown["privileged"] = serde_json::json!(true);
    let err = serde_json::from_value::<JobSpec>(unknown).unwrap_err();
    assert!(
        err.to_string().contains("unknown field `privileged`"),
        "{err}"
    );

    let mut negative = json.clone();
    negative["resources"]["cpuMillicores"] = serde_json::json!(-1);
    let err = serde_json::from_value::<JobSpec>(negative).unwrap_err();
    assert!(
        err.to_string().contains("invalid value: integer `-1`"),
        "{err}"
    );

    let mut decimal = json;
    decimal["maxPayment"] = serde_json::json!("1000000000000000000");
    let spec: JobSpec = serde_json::from_value(decimal).unwrap();
    assert_eq!(spec.maxPayment, sample_spec().maxPayment);
}

proptest! {
    /// Validation never panics, whatever the fields hold.
    #[test]
    fn validation_is_total(
        image in ".{0,80}", out in ".{0,20}", cpu in any::<u64>(), mem in any::<u64>(),
        disk in any::<u64>(), dur in any::<u64>(), net in any::<u8>(), replicas in any::<u16>(),
        deadline in any::<u64>(), path in ".{0,20}", size in any::<u64>(),
    ) {
        let mut spec = sample_spec();
        spec.image = image;
        spec.outputPath = out;
        spec.resources.cpuMillicores = cpu;
        spec.resources.memoryBytes = mem;
        spec.resources.diskBytes = disk;
        spec.maxDurationSecs = dur;
        spec.network = net;
        spec.replicas = replicas;
        spec.deadline = deadline;
        spec.inputs[0].path = path;
        spec.inputs[0].size = size;
        let _ = spec.validate(NOW);
    }

    /// Input paths that validate cannot leave the input directory.
    #[test]
    fn valid_input_paths_stay_inside(path in "[a-z./]{1,16}") {
        let mut spec = sample_spec();
        spec.inputs[0].path = path.clone();
        if spec.validate(NOW).is_ok() {
            let joined = std::path::Path::new("/fog/in").join(&path);
            let mut depth = 0i32;
            for c in joined.components().skip(1) {
                match c {
                    std::path::Component::ParentDir => depth -= 1,
                    std::path::Component::Normal(_) => depth += 1,
                    _ => {}
                }
                prop_assert!(depth >= 0);
            }
            prop_assert!(!path.starts_with('/'));
        }
    }
}
