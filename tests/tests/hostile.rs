//! Hostile images and hostile job scripts against the miner's sandbox, on
//! the real Docker engine with the FROM-scratch images `make setup` builds
//! (`fog-test/busybox`, and `fog-test/hostile`: VOLUME paths and a
//! setuid-root busybox). Every case is checked afterwards: no container,
//! mount, volume, process, cgroup or work-directory file of the job remains.
//!
//! docs/executor.md maps each threat to its control and to the test here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fog_miner::executor::{ExecError, Executor, ExecutorConfig, Outcome};
use fog_miner::metering::JobCgroup;
use fog_protocol::clock::unix_now;
use fog_protocol::output::{archive_digest, output_limit, unpack_archive};
use fog_protocol::wire::{Isolation, LogStream};
use fog_protocol::{B256, JobSpec, Placement, Resources, U256};

const BUSYBOX: &str = "fog-test/busybox:latest";
const HOSTILE: &str = "fog-test/hostile:latest";

struct Sandbox {
    executor: Executor,
    work: tempfile::TempDir,
}

impl Sandbox {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(tweak: impl FnOnce(&mut ExecutorConfig)) -> Self {
        let work = tempfile::Builder::new()
            .prefix("fog-hostile")
            .tempdir()
            .unwrap();
        let mut config = ExecutorConfig::new(work.path().to_owned());
        tweak(&mut config);
        let executor = Executor::connect(config).await.unwrap();
        Self { executor, work }
    }

    async fn image_id(&self, tag: &str) -> String {
        self.executor
            .docker()
            .inspect_image(tag)
            .await
            .unwrap_or_else(|_| panic!("{tag} is missing: run `make setup`"))
            .id
            .unwrap()
    }

    async fn spec(&self, image: &str, script: &str) -> JobSpec {
        JobSpec {
            image: self.image_id(image).await,
            command: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![],
            inputs: vec![],
            outputPath: "/fog/out".into(),
            resources: Resources {
                cpuMillicores: 1_000,
                memoryBytes: 64 << 20,
                diskBytes: 16 << 20,
                gpuCount: 0,
            },
            maxDurationSecs: 30,
            network: 0,
            placement: Placement::default(),
            replicas: 1,
            maxPayment: U256::from(1u8),
            deadline: unix_now() + 3_600,
        }
    }

    /// Runs the job, then checks that nothing of it is left but its archive
    /// (on success), which is returned for the case to inspect and removed.
    async fn run(&self, spec: &JobSpec) -> (Result<Outcome, ExecError>, Option<Vec<u8>>) {
        let volumes_before = volumes(&self.executor).await;
        let mut id = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut id[..]);
        let job_id = B256::from(id);
        let result = self
            .executor
            .run(job_id, spec, &HashMap::new(), Default::default())
            .await;
        let archive = result.as_ref().ok().map(|o| {
            let bytes = std::fs::read(&o.output_archive).unwrap();
            std::fs::remove_file(&o.output_archive).unwrap();
            bytes
        });
        self.assert_nothing_left(job_id, &volumes_before).await;
        (result, archive)
    }

    async fn assert_nothing_left(&self, job_id: B256, volumes_before: &HashSet<String>) {
        let name = self.executor.container_name(job_id);
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&HashMap::from([("name", vec![name.as_str()])]))
            .build();
        let containers = self
            .executor
            .docker()
            .list_containers(Some(options))
            .await
            .unwrap();
        assert!(containers.is_empty(), "container left: {containers:?}");
        let added: Vec<_> = volumes(&self.executor)
            .await
            .difference(volumes_before)
            .cloned()
            .collect();
        assert!(added.is_empty(), "volumes left: {added:?}");
        let work = self.work.path().to_str().unwrap();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        assert!(!mounts.contains(work), "mount left under {work}");
        assert!(!JobCgroup::new(&name).exists(), "cgroup {name} left");
        assert!(
            processes_in(&name).is_empty(),
            "processes left: {:?}",
            processes_in(&name)
        );
        let files: Vec<_> = std::fs::read_dir(self.work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(files.is_empty(), "work directory not empty: {files:?}");
    }
}

async fn volumes(executor: &Executor) -> HashSet<String> {
    executor
        .docker()
        .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
        .await
        .unwrap()
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect()
}

/// Processes whose cgroup path names the job (its container sits under
/// `fog-jobs/<name>`).
fn processes_in(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cgroups) = std::fs::read_to_string(entry.path().join("cgroup"))
            && cgroups.contains(name)
        {
            found.push(pid);
        }
    }
    found
}

fn stdout(outcome: &Outcome) -> String {
    logs(outcome, LogStream::Stdout)
}

fn logs(outcome: &Outcome, stream: LogStream) -> String {
    outcome
        .logs
        .iter()
        .filter(|c| c.stream == stream)
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect()
}

fn unpacked(archive: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    unpack_archive(archive, &dir.path().join("out")).unwrap();
    dir
}

// ---- output size ---------------------------------------------------------

/// The one note a performed run's over-limit output is replaced with.
fn over_limit_note(archive: Option<Vec<u8>>) -> String {
    let dir = unpacked(&archive.expect("a performed run has an archive"));
    let entries: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        [fog_protocol::output::OVER_LIMIT_MARKER],
        "only the note"
    );
    std::fs::read_to_string(
        dir.path()
            .join("out")
            .join(fog_protocol::output::OVER_LIMIT_MARKER),
    )
    .unwrap()
}

#[tokio::test]
async fn a_sparse_file_larger_than_the_limit_is_replaced_by_a_note_without_filling_the_disk() {
    let s = Sandbox::new().await;
    let spec = s
        .spec(BUSYBOX, "truncate -s 200G /fog/out/holes && echo made")
        .await;
    let started = Instant::now();
    let (result, archive) = s.run(&spec).await;
    // The run was performed (its logs delivered): it ends with an outcome to
    // sign and be paid for, whose output says why the rest is missing.
    let outcome = result.unwrap();
    assert_eq!(outcome.exit_code, 0);
    // The job has failed, with the limit's words...
    let failure = outcome.output_over_limit.clone().expect("a failure");
    assert_eq!(
        failure,
        format!(
            "output too large: {} bytes, limit {}",
            (200u64 << 30) + 512 + 1024,
            output_limit(16 << 20)
        )
    );
    // ... and its archive is only the note saying so.
    let note = over_limit_note(archive);
    let expected = format!(
        "its archive would be {} bytes, over the limit of {} bytes",
        (200u64 << 30) + 512 + 1024,
        output_limit(16 << 20)
    );
    assert!(note.contains(&expected), "{note}");
    // Judged from metadata: 200 GB of holes were never read or written.
    assert!(started.elapsed() < Duration::from_secs(30));
    // Deterministic: a second replica agrees on the note's archive.
    let (again, _) = s.run(&spec).await;
    assert_eq!(again.unwrap().output.sha256, outcome.output.sha256);
}

#[tokio::test]
async fn hard_links_cannot_inflate_the_archive_unseen() {
    let s = Sandbox::new().await;
    let spec = s
        .spec(
            BUSYBOX,
            "head -c 4000000 /dev/zero > /fog/out/a && i=0; while [ $i -lt 200 ]; do ln /fog/out/a /fog/out/l$i; i=$((i+1)); done",
        )
        .await;
    let (result, archive) = s.run(&spec).await;
    assert!(
        result.as_ref().unwrap().output_over_limit.is_some(),
        "{result:?}"
    );
    let note = over_limit_note(archive);
    let size: u64 = note
        .split("would be ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    assert!(size > 800_000_000, "every link counted whole: {note}");
}

#[tokio::test]
async fn millions_of_empty_files_hit_the_inode_limit_and_the_disk_is_full() {
    let s = Sandbox::new().await;
    let spec = s
        .spec(
            BUSYBOX,
            "i=0; while touch /fog/out/f$i 2>/dev/null; do i=$((i+1)); [ $i -ge 100000 ] && break; done; echo $i",
        )
        .await;
    let (result, archive) = s.run(&spec).await;
    let outcome = result.unwrap();
    let made: u64 = stdout(&outcome).trim().parse().unwrap();
    // One inode per 16 KiB of the 16 MiB asked for, and a few for the sandbox.
    assert!((900..1100).contains(&made), "{made} files");
    assert!(outcome.disk_full, "{outcome:?}");
    assert!(archive.unwrap().len() < 2 << 20);
}

// ---- special files and clean-up --------------------------------------------

#[tokio::test]
async fn fifos_in_the_output_are_skipped_by_rule_and_reported_to_the_buyer() {
    let s = Sandbox::new().await;
    let spec = s
        .spec(
            BUSYBOX,
            "echo 42 > /fog/out/result && mkfifo /fog/out/pipe && mkdir /fog/out/d && mkfifo /fog/out/d/p2",
        )
        .await;
    let (result, archive) = s.run(&spec).await;
    let outcome = result.unwrap();
    let skipped: Vec<_> = outcome
        .skipped_outputs
        .iter()
        .map(|e| (e.path.to_string_lossy().into_owned(), e.kind))
        .collect();
    assert_eq!(
        skipped,
        vec![("d/p2".into(), "FIFO"), ("pipe".into(), "FIFO")]
    );
    let told = logs(&outcome, LogStream::Stderr);
    assert!(
        told.contains("left out of the output") && told.contains("pipe (FIFO)"),
        "{told}"
    );
    let out = unpacked(&archive.unwrap());
    assert_eq!(
        std::fs::read_to_string(out.path().join("out/result")).unwrap(),
        "42\n"
    );
    assert!(!out.path().join("out/pipe").exists());
}

#[tokio::test]
async fn every_failure_path_leaves_nothing_behind() {
    let s = Sandbox::new().await;
    // A spec the engine cannot start (no such command), a missing input, a
    // job that is killed at its deadline, one whose output is refused.
    let mut no_command = s.spec(BUSYBOX, "true").await;
    no_command.command = vec!["/no/such/binary".into()];
    let (result, _) = s.run(&no_command).await;
    assert!(result.is_err() || result.unwrap().exit_code != 0);

    let mut missing_input = s.spec(BUSYBOX, "true").await;
    missing_input.inputs = vec![fog_protocol::InputBlob {
        contentHash: B256::repeat_byte(7),
        size: 3,
        path: "x".into(),
    }];
    let (result, _) = s.run(&missing_input).await;
    assert!(matches!(result, Err(ExecError::Input { .. })), "{result:?}");

    let mut slow = s.spec(BUSYBOX, "sleep 60 & sleep 60").await;
    slow.maxDurationSecs = 1;
    let (result, _) = s.run(&slow).await;
    assert!(result.unwrap().timed_out);
}

#[tokio::test]
async fn daemons_started_by_the_job_die_with_it() {
    let s = Sandbox::new().await;
    let spec = s
        .spec(
            BUSYBOX,
            "(sleep 600 &) ; nohup sleep 600 >/dev/null 2>&1 & setsid sleep 600 & echo spawned",
        )
        .await;
    let (result, _) = s.run(&spec).await;
    assert_eq!(stdout(&result.unwrap()).trim(), "spawned");
}

// ---- permissions on unpack ---------------------------------------------------

#[tokio::test]
async fn a_setuid_binary_in_the_output_is_unpacked_without_its_bits() {
    let s = Sandbox::new().await;
    let spec = s
        .spec(
            BUSYBOX,
            "cp /bin/busybox /fog/out/rootshell && chmod 6755 /fog/out/rootshell && mkdir /fog/out/open && chmod 1777 /fog/out/open && echo x > /fog/out/w && chmod 666 /fog/out/w",
        )
        .await;
    let (result, archive) = s.run(&spec).await;
    result.unwrap();
    let archive = archive.unwrap();
    // The archive keeps what the job made (replicas must agree on it) ...
    let mut tar = tar::Archive::new(archive.as_slice());
    let modes: HashMap<String, u32> = tar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().mode().unwrap(),
            )
        })
        .collect();
    assert_eq!(modes["rootshell"], 0o6755);
    // ... and unpacking makes none of it dangerous.
    let out = unpacked(&archive);
    let mode = |p: &str| {
        std::fs::symlink_metadata(out.path().join("out").join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("rootshell"), 0o755);
    assert_eq!(mode("open"), 0o755);
    assert_eq!(mode("w"), 0o644);
}

#[tokio::test]
async fn links_to_the_host_are_stored_never_followed_and_refused_on_unpack() {
    let s = Sandbox::new().await;
    let spec = s
        .spec(
            BUSYBOX,
            "ln -s /etc/shadow /fog/out/shadow && ln -s ../../../../.. /fog/out/up",
        )
        .await;
    let (result, archive) = s.run(&spec).await;
    result.unwrap();
    let archive = archive.unwrap();
    let shadow = std::fs::read("/etc/shadow").unwrap_or_default();
    if shadow.len() >= 16 {
        assert!(!archive.windows(16).any(|w| w == &shadow[..16]));
    }
    let dir = tempfile::tempdir().unwrap();
    let err = unpack_archive(archive.as_slice(), &dir.path().join("out")).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
}

// ---- image-declared volumes and privileges --------------------------------------

#[tokio::test]
async fn image_volumes_live_on_the_job_disk_and_count_in_its_limit() {
    let s = Sandbox::new().await;
    let mut spec = s
        .spec(
            HOSTILE,
            "stat -c '%n %u:%g' /data /var/cache/app /tmp /fog/out; dd if=/dev/zero of=/data/fill bs=1M count=64 2>/dev/null; echo dd=$?; touch /var/cache/app/ok && echo cache-ok",
        )
        .await;
    spec.resources.diskBytes = 8 << 20;
    let (result, _) = s.run(&spec).await;
    let outcome = result.unwrap();
    let out = stdout(&outcome);
    for dir in ["/data", "/var/cache/app", "/tmp", "/fog/out"] {
        assert!(
            out.contains(&format!("{dir} 65534:65534")),
            "{dir} not owned by the job's user: {out}"
        );
    }
    assert!(out.contains("dd=1"), "64 MiB fitted in an 8 MiB job: {out}");
    assert!(outcome.disk_full, "{outcome:?}");
    assert!(outcome.disk_used_bytes <= 10 << 20, "{outcome:?}");
}

#[tokio::test]
async fn a_setuid_root_binary_in_the_image_gains_nothing() {
    let s = Sandbox::new().await;
    let spec = s
        .spec(
            HOSTILE,
            "/suid/busybox id -u; /suid/busybox sh -c 'echo x > /etc/pwned' 2>&1; grep -E 'CapEff|NoNewPrivs' /proc/self/status",
        )
        .await;
    let (result, _) = s.run(&spec).await;
    let out = stdout(&result.unwrap());
    assert!(out.starts_with("65534\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

// ---- the classes that already held -------------------------------------------------

#[tokio::test]
async fn resource_bombs_are_contained() {
    let s = Sandbox::with(|c| c.pids_limit = 32).await;
    let mut fork = s
        .spec(
            BUSYBOX,
            "i=0; while [ $i -lt 300 ]; do sleep 5 & i=$((i+1)); done 2>/dev/null; echo spawned",
        )
        .await;
    fork.maxDurationSecs = 15;
    let (result, _) = s.run(&fork).await;
    result.unwrap();

    let mut oom = s
        .spec(BUSYBOX, "dd if=/dev/zero of=/dev/null bs=256M count=1")
        .await;
    oom.resources.memoryBytes = 32 << 20;
    let (result, _) = s.run(&oom).await;
    assert!(result.unwrap().oom_killed);

    let flood = s.spec(BUSYBOX, "yes flood | head -c 8000000").await;
    let (result, _) = s.run(&flood).await;
    let outcome = result.unwrap();
    assert!(outcome.logs_truncated);
    assert!(outcome.logs.iter().map(|c| c.data.len()).sum::<usize>() <= 1 << 20);
}

#[tokio::test]
async fn no_network_and_no_writable_root() {
    let s = Sandbox::new().await;
    let spec = s
        .spec(
            BUSYBOX,
            "ls /sys/class/net; touch /bin/x 2>&1; wget -q -T 2 http://1.1.1.1/ 2>&1; echo end",
        )
        .await;
    let (result, _) = s.run(&spec).await;
    let out = stdout(&result.unwrap());
    assert!(out.starts_with("lo\n"), "interfaces: {out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!out.contains("<html"), "{out}");
}

// ---- gVisor -----------------------------------------------------------------------

#[tokio::test]
async fn jobs_run_under_gvisor_with_the_same_output_and_the_same_guarantees() {
    let runc = Sandbox::new().await;
    let gvisor = Sandbox::with(|c| c.runtime = Some("runsc".into())).await;
    assert_eq!(gvisor.executor.runtime().isolation, Isolation::Gvisor);
    assert_eq!(runc.executor.runtime().isolation, Isolation::Container);
    assert_ne!(gvisor.executor.runtime().version, "unknown");

    let script = "seq 1 500 | sort -r > /fog/out/n && dmesg | head -1 >&2";
    let (a, archive_a) = runc.run(&runc.spec(BUSYBOX, script).await).await;
    let (b, archive_b) = gvisor.run(&gvisor.spec(BUSYBOX, script).await).await;
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.output, b.output, "replicas agree across runtimes");
    assert_eq!(archive_a, archive_b);
    assert!(
        logs(&b, LogStream::Stderr).contains("gVisor"),
        "not under gVisor: {:?}",
        logs(&b, LogStream::Stderr)
    );
    assert!(b.cpu_time_ms > 0 || b.peak_memory_bytes > 0, "{b:?}");

    // The disk limit and the output bound hold under gVisor too.
    let (sparse, archive) = gvisor
        .run(
            &gvisor
                .spec(BUSYBOX, "truncate -s 100G /fog/out/holes")
                .await,
        )
        .await;
    assert!(
        sparse.as_ref().unwrap().output_over_limit.is_some(),
        "{sparse:?}"
    );
    assert!(over_limit_note(archive).contains("over the limit"));
    let mut volumes = gvisor
        .spec(
            HOSTILE,
            "dd if=/dev/zero of=/data/f bs=1M count=64 2>/dev/null; echo dd=$?",
        )
        .await;
    volumes.resources.diskBytes = 8 << 20;
    let (result, _) = gvisor.run(&volumes).await;
    let outcome = result.unwrap();
    assert!(stdout(&outcome).contains("dd=1"), "{outcome:?}");
}

#[tokio::test]
async fn an_unknown_runtime_is_refused_with_what_the_engine_has() {
    let work = tempfile::tempdir().unwrap();
    let mut config = ExecutorConfig::new(work.path().to_owned());
    config.runtime = Some("kata".into());
    let err = Executor::connect(config).await.unwrap_err().to_string();
    assert!(
        err.contains("no runtime \"kata\"") && err.contains("runc"),
        "{err}"
    );
}

/// The miner binary's own unpacking (`fog-miner exec --out`) applies the same rules.
#[tokio::test]
async fn fog_miner_exec_unpacks_without_setuid_bits() {
    let s = Sandbox::new().await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = dir.path().join("miner.json");
    let miner = fog_tests::binary("fog-miner").unwrap();
    let created = Command::new(&miner)
        .args(["key", "new", "--keystore"])
        .arg(&keystore)
        .env("FOG_MINER_KEY_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let spec = s
        .spec(
            BUSYBOX,
            "cp /bin/busybox /fog/out/suid && chmod 4755 /fog/out/suid",
        )
        .await;
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = dir.path().join("out");
    let run = Command::new(&miner)
        .arg("exec")
        .arg(&spec_path)
        .arg("--keystore")
        .arg(&keystore)
        .arg("--work-dir")
        .arg(s.work.path())
        .arg("--out")
        .arg(&out)
        .env("FOG_MINER_KEY_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mode = std::fs::metadata(out.join("suid"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    assert!(archive_digest(Path::new(&out)).is_ok());
    assert_eq!(std::fs::read_dir(s.work.path()).unwrap().count(), 0);
}
