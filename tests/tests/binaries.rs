//! Every binary of the workspace starts, describes itself, and refuses bad
//! arguments with a message and a non-zero exit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::process::Command;

const BINARIES: [&str; 3] = ["fog", "fog-hub", "fog-miner"];

#[test]
fn every_binary_answers_help() {
    for name in BINARIES {
        let out = Command::new(fog_tests::binary(name).unwrap())
            .arg("--help")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name} --help failed: {out:?}");
        assert!(
            stdout.contains(&format!("Usage: {name}")),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn every_binary_rejects_an_unknown_flag() {
    for name in BINARIES {
        let out = Command::new(fog_tests::binary(name).unwrap())
            .arg("--no-such-flag")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        assert!(stderr.contains("--no-such-flag"), "{name}: {stderr}");
    }
}

#[test]
fn every_binary_without_a_command_shows_usage() {
    for (name, commands) in [
        ("fog", &["deploy", "key", "job"][..]),
        ("fog-miner", &["key", "policy", "exec", "run"][..]),
        ("fog-hub", &["serve"][..]),
    ] {
        let out = Command::new(fog_tests::binary(name).unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            stderr.contains(&format!("Usage: {name} <COMMAND>")),
            "{stderr}"
        );
        for command in commands {
            assert!(stderr.contains(command), "{name}: {stderr}");
        }
    }
}
