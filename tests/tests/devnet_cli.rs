//! A buyer's first hour: `fog devnet up` starts a persistent local market
//! (chain, contracts, hub, two miners, an image registry, a funded buyer) and
//! a profile; the buyer pushes a freshly built image by tag and runs it with
//! plain `fog` commands; `fog devnet down` leaves no process, and a second
//! `up` finds the same chain again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::path::Path;
use std::process::{Command, Output};

struct User {
    home: tempfile::TempDir,
    dir: std::path::PathBuf,
    cwd: tempfile::TempDir,
}

impl User {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("devnet");
        Self {
            home,
            dir,
            cwd: tempfile::tempdir().unwrap(),
        }
    }

    /// `fog …` as this user: their own HOME (so their own default profile),
    /// no other configuration in the environment.
    fn fog(&self, args: &[&str]) -> Output {
        Command::new(fog_tests::binary("fog").unwrap())
            .args(args)
            .current_dir(self.cwd.path())
            .env("HOME", self.home.path())
            .env("FOG_DEVNET_DIR", &self.dir)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("FOG_CONFIG")
            .env_remove("FOG_KEYSTORE")
            .env_remove("FOG_HUB_URL")
            .env_remove("FOG_DEPLOYMENT")
            .env_remove("FOG_RPC_URL")
            .env_remove("FOG_KEY_PASSWORD")
            .output()
            .unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

/// A new image, built here FROM scratch with the static busybox, under `tag`.
fn build_image(tag: &str) {
    let context = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", context.path().join("busybox")).unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\nCMD [\"/bin/sh\"]\n",
    )
    .unwrap();
    let built = Command::new("docker")
        .args(["build", "--quiet", "-t", tag])
        .arg(context.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built));
}

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

#[test]
fn a_buyer_runs_their_own_image_on_their_own_devnet() {
    let user = User::new();
    let up = user.fog(&["devnet", "up"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(text(&up).contains("the devnet is up"), "{}", text(&up));
    let again = user.fog(&["devnet", "up"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already up"), "{}", text(&again));

    let status = user.fog(&["devnet", "status", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    for key in ["rpc", "hub", "registry", "buyer"] {
        assert!(status[key].is_string(), "{key} missing: {status}");
    }
    let registry = status["registry"].as_str().unwrap().to_owned();
    let pids: Vec<u64> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_u64().expect("every service running"))
        .collect();
    assert_eq!(pids.len(), 5);

    // The user's own image, built now, pushed by tag to the devnet's registry.
    let name = format!(
        "fog-user-image-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    build_image(&name);
    let remote = format!("{registry}/{name}:v1");
    assert!(docker(&["tag", &name, &remote]).status.success());
    let pushed = docker(&["push", &remote]);
    assert!(pushed.status.success(), "{}", text(&pushed));

    // Plain `fog`: the profile `up` wrote says where everything is.
    let run = user.fog(&[
        "job",
        "run",
        "--image",
        &remote,
        "--max-price",
        "1",
        "--disk",
        "16M",
        "--wait",
        "--",
        "sh",
        "-c",
        "echo hello from my image; echo 42 > /fog/out/answer",
    ]);
    assert!(run.status.success(), "{}", text(&run));
    let all = text(&run);
    assert!(all.contains("hello from my image"), "{all}");
    assert!(all.contains("pinned by digest"), "{all}");
    assert!(all.contains("output verified"), "{all}");
    let out = user.cwd.path().join("fog-out");
    let job_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read_to_string(job_dir.join("answer")).unwrap(),
        "42\n"
    );

    // An unknown tag says why and how to fix it.
    let missing = user.fog(&[
        "job",
        "run",
        "--image",
        &format!("{registry}/no-such-image:v9"),
        "--max-price",
        "1",
        "--",
        "true",
    ]);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("docker push"), "{}", text(&missing));

    let logs = user.fog(&["devnet", "logs", "hub"]);
    assert!(text(&logs).contains("hub serving"), "{}", text(&logs));

    // Down: nothing of it is left running.
    let hub_before = status["hubAddress"].clone();
    let down = user.fog(&["devnet", "down"]);
    assert!(down.status.success(), "{}", text(&down));
    for pid in &pids {
        assert!(!alive(*pid), "process {pid} outlived `fog devnet down`");
    }

    // Up again: the same chain, the same hub, the buyer's spending remembered.
    let up = user.fog(&["devnet", "up"]);
    assert!(up.status.success(), "{}", text(&up));
    let status = user.fog(&["devnet", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["hubAddress"], hub_before);
    let balance = user.fog(&["token", "balance", "--json"]);
    assert!(balance.status.success(), "{}", text(&balance));
    let down = user.fog(&["devnet", "down"]);
    assert!(down.status.success(), "{}", text(&down));
}
