//! The executor against the real Docker engine and the FROM-scratch busybox
//! test image (`make setup` builds it). After every test, kills and timeouts
//! included, no container, mount or job file of the job is left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Harness, TEST_IMAGE, input, stdout};
use fog_protocol::output::{archive_digest, sha256};

#[tokio::test]
async fn happy_path_with_input_and_exact_output_hash() {
    let h = Harness::new(|_| {}).await;
    let blobs = tempfile::tempdir().unwrap();
    let (blob, hash, path) = input(blobs.path(), "words.txt", b"pear\napple\nfig\n");
    let mut spec = h.spec("sort /fog/in/words.txt > /fog/out/sorted && mkdir /fog/out/meta && wc -l < /fog/in/words.txt > /fog/out/meta/count && id -u");
    spec.inputs = vec![blob];
    let outcome = h.run(&spec, &HashMap::from([(hash, path)])).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:?}");
    assert!(!outcome.timed_out && !outcome.oom_killed && !outcome.disk_full);
    assert_eq!(stdout(&outcome).trim(), "65534", "jobs run as nobody");
    assert!(outcome.ended_at >= outcome.started_at);

    // The same files, made here, hash the same: the receipt's output hash is exact.
    let expected = tempfile::tempdir().unwrap();
    std::fs::write(expected.path().join("sorted"), "apple\nfig\npear\n").unwrap();
    std::fs::set_permissions(
        expected.path().join("sorted"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::create_dir(expected.path().join("meta")).unwrap();
    std::fs::set_permissions(
        expected.path().join("meta"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(expected.path().join("meta/count"), "3\n").unwrap();
    std::fs::set_permissions(
        expected.path().join("meta/count"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(outcome.output, archive_digest(expected.path()).unwrap());
    let archive = std::fs::read(&outcome.output_archive).unwrap();
    assert_eq!(sha256(&archive), outcome.output.sha256);
    assert_eq!(
        format!("sha256:{}", alloy::hex::encode(outcome.image_id)),
        h.image
    );
}

#[tokio::test]
async fn deterministic_job_gives_the_same_hash_twice() {
    let h = Harness::new(|_| {}).await;
    let spec = h.spec("seq 1 1000 > /fog/out/n && sleep 1 && date > /tmp/not-output");
    let a = h.run(&spec, &HashMap::new()).await.unwrap();
    let b = h.run(&spec, &HashMap::new()).await.unwrap();
    assert_eq!(a.output.sha256, b.output.sha256);
}

#[tokio::test]
async fn exit_code_lands_in_the_outcome() {
    let h = Harness::new(|_| {}).await;
    let outcome = h
        .run(&h.spec("echo failing >&2; exit 3"), &HashMap::new())
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 3);
    assert!(outcome.logs.iter().any(|c| c.data == b"failing\n"));
}

#[tokio::test]
async fn timeout_kills_and_is_reported() {
    let h = Harness::new(|_| {}).await;
    let mut spec = h.spec("echo started; sleep 60");
    spec.maxDurationSecs = 2;
    let started = Instant::now();
    let outcome = h.run(&spec, &HashMap::new()).await.unwrap();
    assert!(outcome.timed_out, "{outcome:?}");
    assert_eq!(outcome.exit_code, 137);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn memory_bomb_is_oom_killed() {
    let h = Harness::new(|_| {}).await;
    let mut spec = h.spec("dd if=/dev/zero of=/dev/null bs=256M count=1");
    spec.resources.memoryBytes = 32 << 20;
    let outcome = h.run(&spec, &HashMap::new()).await.unwrap();
    assert!(outcome.oom_killed, "{outcome:?}");
    assert_eq!(outcome.exit_code, 137);
}

#[tokio::test]
async fn fork_bomb_hits_the_pids_limit_and_the_host_stays_responsive() {
    let h = Harness::new(|c| c.pids_limit = 32).await;
    let mut spec =
        h.spec("i=0; while [ $i -lt 500 ]; do sleep 3 & i=$((i+1)); done; wait; echo done");
    spec.maxDurationSecs = 20;
    let no_inputs = HashMap::new();
    let run = h.run(&spec, &no_inputs);
    let probe = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let t = Instant::now();
        let ok = tokio::process::Command::new("true")
            .status()
            .await
            .unwrap()
            .success();
        (ok, t.elapsed())
    };
    let (outcome, (ok, took)) = tokio::join!(run, probe);
    let outcome = outcome.unwrap();
    assert!(ok && took < Duration::from_secs(2), "host slow: {took:?}");
    let all: String = outcome
        .logs
        .iter()
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect();
    assert!(
        all.contains("can't fork") || all.contains("Resource temporarily unavailable"),
        "{all}"
    );
}

#[tokio::test]
async fn no_network_interfaces_under_policy_none() {
    let h = Harness::new(|_| {}).await;
    // Listing interfaces proves it without sending anything anywhere.
    let outcome = h
        .run(&h.spec("ls /sys/class/net"), &HashMap::new())
        .await
        .unwrap();
    assert_eq!(
        stdout(&outcome).split_whitespace().collect::<Vec<_>>(),
        vec!["lo"]
    );

    let mut wants_net = h.spec("true");
    wants_net.network = 1;
    let refused = h.run(&wants_net, &HashMap::new()).await.unwrap_err();
    assert!(refused.to_string().contains("network access"), "{refused}");
}

#[tokio::test]
async fn root_is_read_only_capabilities_dropped_inputs_read_only() {
    let h = Harness::new(|_| {}).await;
    let blobs = tempfile::tempdir().unwrap();
    let (blob, hash, path) = input(blobs.path(), "x", b"data");
    let mut spec = h.spec(
        "touch /bin/evil 2>/dev/null && echo root-writable; \
         echo x > /fog/in/x 2>/dev/null && echo input-writable; \
         touch /fog/in/new 2>/dev/null && echo input-dir-writable; \
         touch /tmp/ok && echo tmp-ok; \
         grep CapEff /proc/self/status",
    );
    spec.inputs = vec![blob];
    let outcome = h.run(&spec, &HashMap::from([(hash, path)])).await.unwrap();
    let out = stdout(&outcome);
    assert!(!out.contains("writable"), "{out}");
    assert!(out.contains("tmp-ok"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
}

#[tokio::test]
async fn output_over_the_disk_limit_fails_clearly() {
    let h = Harness::new(|_| {}).await;
    let mut spec = h.spec("dd if=/dev/zero of=/fog/out/big bs=1M count=40");
    spec.resources.diskBytes = 4 << 20;
    let outcome = h.run(&spec, &HashMap::new()).await.unwrap();
    assert_ne!(outcome.exit_code, 0);
    assert!(outcome.disk_full, "{outcome:?}");
    assert!(outcome.output.size < 16 << 20);
}

#[tokio::test]
async fn log_flood_is_capped() {
    let h = Harness::new(|c| c.max_log_bytes = 64 << 10).await;
    let outcome = h
        .run(&h.spec("yes flood | head -c 5000000"), &HashMap::new())
        .await
        .unwrap();
    assert!(outcome.logs_truncated);
    let kept: usize = outcome.logs.iter().map(|c| c.data.len()).sum();
    assert_eq!(kept, 64 << 10);
}

#[tokio::test]
async fn missing_image_bad_inputs_and_malformed_spec_are_clear_errors() {
    let h = Harness::new(|_| {}).await;
    let mut missing = h.spec("true");
    missing.image = format!("sha256:{}", "0".repeat(64));
    let err = h
        .run(&missing, &HashMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not on this machine"), "{err}");

    let mut gpu = h.spec("true");
    gpu.resources.gpuCount = 1;
    let err = h.run(&gpu, &HashMap::new()).await.unwrap_err().to_string();
    assert!(err.contains("no nvidia runtime"), "{err}");

    let mut malformed = h.spec("true");
    malformed.replicas = 0;
    let err = h
        .run(&malformed, &HashMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "invalid spec: replicas: must be at least 1");

    let blobs = tempfile::tempdir().unwrap();
    let (blob, hash, path) = input(blobs.path(), "x", b"real");
    std::fs::write(&path, b"fake").unwrap();
    let mut tampered = h.spec("true");
    tampered.inputs = vec![blob.clone()];
    let err = h
        .run(&tampered, &HashMap::from([(hash, path)]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not hash to"), "{err}");
    let mut absent = h.spec("true");
    absent.inputs = vec![blob];
    let err = h
        .run(&absent, &HashMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no blob with hash"), "{err}");
}

#[tokio::test]
async fn cpu_time_and_peak_memory_are_metered_exactly() {
    let h = Harness::new(|_| {}).await;
    // A 40 MiB buffer, then about a third of a second of pure shell arithmetic.
    let mut spec = h.spec("dd if=/dev/zero of=/dev/null bs=40M count=1 && i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done");
    spec.resources.memoryBytes = 128 << 20;
    let outcome = h.run(&spec, &HashMap::new()).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:?}");
    assert!(
        (40 << 20..128 << 20).contains(&outcome.peak_memory_bytes),
        "peak {}",
        outcome.peak_memory_bytes
    );
    assert!(outcome.cpu_time_ms >= 100, "cpu {} ms", outcome.cpu_time_ms);
    // One core at most: CPU time cannot exceed wall time (plus scheduler slack).
    let wall_ms = u64::try_from(outcome.wall_time.as_millis()).unwrap();
    assert!(
        outcome.cpu_time_ms <= wall_ms + 50,
        "cpu {} ms > wall {wall_ms} ms",
        outcome.cpu_time_ms
    );

    // A trivial job is metered too, though it ends long before any stats sample.
    let quick = h.run(&h.spec("true"), &HashMap::new()).await.unwrap();
    assert!(quick.peak_memory_bytes > 0, "{quick:?}");
}

/// Debian's docker-registry on a free loopback port, holding the test image.
struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    repository: String,
    digest: String,
}

impl Registry {
    async fn start(docker: &bollard::Docker) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry is missing: run `make setup`");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let repository = format!("127.0.0.1:{port}/fog/busybox");
        let tag = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(&repository)
            .tag("v1")
            .build();
        docker.tag_image(TEST_IMAGE, Some(tag)).await.unwrap();
        let push = bollard::query_parameters::PushImageOptionsBuilder::default()
            .tag("v1")
            .build();
        let mut digest = None;
        let mut stream = docker.push_image(&repository, Some(push), None);
        while let Some(info) = futures_util::StreamExt::next(&mut stream).await {
            let info = info.unwrap();
            assert!(info.error_detail.is_none(), "push failed: {info:?}");
            if let Some(d) = info
                .status
                .as_deref()
                .and_then(|s| s.split("digest: ").nth(1))
            {
                digest = d.split_whitespace().next().map(str::to_owned);
            }
        }
        // Untag, so that running by digest has to pull from the registry.
        docker
            .remove_image(
                &format!("{repository}:v1"),
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
            .unwrap();
        Self {
            child,
            _dir: dir,
            repository,
            digest: digest.expect("the push reported no digest"),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn pulls_by_digest_from_a_registry_and_refuses_a_wrong_digest() {
    let h = Harness::new(|_| {}).await;
    let docker = h.executor.docker().clone();
    let registry = Registry::start(&docker).await;
    let by_digest = format!("{}@{}", registry.repository, registry.digest);
    assert!(
        docker.inspect_image(&by_digest).await.is_err(),
        "must not be local before the run"
    );

    let mut spec = h.spec("echo pulled");
    spec.image = format!("{}:v1@{}", registry.repository, registry.digest);
    let outcome = h.run(&spec, &HashMap::new()).await.unwrap();
    assert_eq!(stdout(&outcome), "pulled\n");
    // The receipt names the image that ran: the pulled one is the test image.
    assert_eq!(
        format!("sha256:{}", alloy::hex::encode(outcome.image_id)),
        h.image
    );
    docker
        .remove_image(
            &by_digest,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .unwrap();

    let mut wrong = h.spec("echo never");
    wrong.image = format!("{}@sha256:{}", registry.repository, "ab".repeat(32));
    let err = h
        .run(&wrong, &HashMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("pulling {}", wrong.image)),
        "{err}"
    );
    assert!(
        err.contains("manifest unknown") || err.contains("not found"),
        "{err}"
    );
}

#[tokio::test]
async fn leftovers_of_an_abandoned_run_are_cleaned_up_at_start() {
    let h = Harness::new(|_| {}).await;
    let spec = h.spec("sleep 60");
    let executor = h.executor.clone();
    let job_id = fog_protocol::B256::repeat_byte(0x77);
    let run = tokio::spawn(async move {
        executor
            .run(job_id, &spec, &HashMap::new(), Default::default())
            .await
    });
    // Abandon the run once its container is up, as a miner killed mid-job does.
    let name = h.executor.container_name(job_id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while h
        .executor
        .docker()
        .inspect_container(&name, None)
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the container never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.abort();
    let _ = run.await;
    assert!(
        h.executor
            .docker()
            .inspect_container(&name, None)
            .await
            .is_ok(),
        "left behind, as after a kill"
    );

    assert_eq!(h.executor.clean_leftovers().await.unwrap(), 1);
    h.assert_clean().await;
    common::assert_job_gone(&h.executor, job_id);
    assert_eq!(h.executor.clean_leftovers().await.unwrap(), 0, "idempotent");
}
