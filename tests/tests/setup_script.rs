//! `deploy/dev/setup.sh` (run by `make demo` and `make test`): quick and
//! silent when everything is present, and on a machine where it cannot
//! install, a list of what is missing and how to get it, with exit 1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn setup_script() -> std::path::PathBuf {
    fog_tests::repo_root().join("deploy/dev/setup.sh")
}

#[test]
fn second_run_is_quick_and_changes_nothing() {
    // `make test` ran setup before this test, so everything is present.
    let started = Instant::now();
    let out = Command::new(setup_script()).output().unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        !stdout.contains("installing")
            && !stdout.contains("building")
            && !stdout.contains("starting"),
        "idempotent run did work: {stdout}"
    );
    assert!(stdout.contains("[setup] ready: docker"), "{stdout}");
    assert!(elapsed.as_secs() < 20, "idempotent run took {elapsed:?}");
}

fn write_tool(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs the script as `nobody` with a PATH holding only harmless stand-ins
/// for the base tools, so nothing can be installed and the engine is absent.
fn run_unprivileged(tools: &[(&str, &str)]) -> std::process::Output {
    let bin = tempfile::Builder::new()
        .prefix("fog-setup-path")
        .tempdir()
        .unwrap();
    fs::set_permissions(bin.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for (name, body) in tools {
        write_tool(bin.path(), name, body);
    }
    // The script's own helpers (ldd, sha256sum, id, ...) come from /usr/bin.
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    // A copy the unprivileged user can read: the checkout may be in a
    // directory only root can enter (root's home, a `mktemp -d`).
    let copy = tempfile::Builder::new()
        .prefix("fog-setup-copy")
        .tempdir()
        .unwrap();
    fs::set_permissions(copy.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let script = copy.path().join("deploy/dev/setup.sh");
    for dir in [copy.path().join("deploy"), copy.path().join("deploy/dev")] {
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::copy(setup_script(), &script).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg("/bin/bash")
        .arg(&script)
        .env_clear()
        .env("PATH", path)
        .env("FOG_STATE_DIR", "/tmp/fog-setup-test-state")
        .output()
        .unwrap()
}

#[test]
fn without_root_it_lists_what_is_missing_and_fails() {
    if !Path::new("/usr/bin/setpriv").exists() {
        panic!("setpriv (util-linux) is required for this test");
    }
    // No dockerd on this PATH: /usr/sbin is left out.
    let base = [
        ("cargo", "exit 0"),
        ("git", "exit 0"),
        ("npm", "exit 0"),
        ("node", "echo 20"),
    ];
    let out = run_unprivileged(&base);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr.contains("missing packages: docker.io"), "{stderr}");
    assert!(stderr.contains("apt-get install -y docker.io"), "{stderr}");

    // No Rust toolchain: the script names it and how to get it.
    let out = run_unprivileged(&[("git", "exit 0")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr.contains("missing cargo"), "{stderr}");
    assert!(stderr.contains("rustup"), "{stderr}");

    // An old Node.js is refused with its version.
    let old_node = [
        ("cargo", "exit 0"),
        ("git", "exit 0"),
        ("npm", "exit 0"),
        (
            "node",
            "case \"$1\" in --version) echo v18.0.0;; *) echo 18;; esac",
        ),
    ];
    let out = run_unprivileged(&old_node);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr.contains("v18.0.0 is too old"), "{stderr}");
}
