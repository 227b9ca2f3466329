//! Helpers shared by the miner's Docker tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test file uses a part; helpers may panic

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fog_miner::executor::{ExecError, Executor, ExecutorConfig, Outcome};
use fog_miner::metering::JobCgroup;
use fog_protocol::output::sha256;
use fog_protocol::{B256, InputBlob, JobSpec, Placement, Resources, U256};

pub const TEST_IMAGE: &str = "fog-test/busybox:latest";

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub struct Harness {
    pub executor: Executor,
    pub work: tempfile::TempDir,
    pub image: String,
}

impl Harness {
    pub async fn new(tweak: impl FnOnce(&mut ExecutorConfig)) -> Self {
        let work = tempfile::Builder::new()
            .prefix("fog-exec-test")
            .tempdir()
            .unwrap();
        let mut config = ExecutorConfig::new(work.path().to_owned());
        tweak(&mut config);
        let executor = Executor::connect(config).await.unwrap();
        let id = executor
            .docker()
            .inspect_image(TEST_IMAGE)
            .await
            .expect("the busybox test image is missing: run `make setup`")
            .id
            .unwrap();
        Self {
            executor,
            work,
            image: id,
        }
    }

    pub fn spec(&self, script: &str) -> JobSpec {
        JobSpec {
            image: self.image.clone(),
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
            deadline: now() + 3_600,
        }
    }

    pub async fn run(
        &self,
        spec: &JobSpec,
        inputs: &HashMap<B256, PathBuf>,
    ) -> Result<Outcome, ExecError> {
        let mut id = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut id[..]);
        let job_id = B256::from(id);
        let result = self
            .executor
            .run(job_id, spec, inputs, Default::default())
            .await;
        self.assert_clean().await;
        assert_job_gone(&self.executor, job_id);
        result
    }

    /// No container of ours, no mount under the work dir, no job files but output archives.
    pub async fn assert_clean(&self) {
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&HashMap::from([("label", vec!["org.fog.job"])]))
            .build();
        let left: Vec<_> = self
            .executor
            .docker()
            .list_containers(Some(options))
            .await
            .unwrap()
            .into_iter()
            .filter(|c| {
                c.mounts.iter().flatten().any(|m| {
                    m.source
                        .as_deref()
                        .is_some_and(|s| s.starts_with(self.work.path().to_str().unwrap()))
                })
            })
            .collect();
        assert!(left.is_empty(), "containers left behind: {left:?}");
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        assert!(
            !mounts.contains(self.work.path().to_str().unwrap()),
            "mounts left behind"
        );
        for entry in std::fs::read_dir(self.work.path()).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(
                path.extension().and_then(|e| e.to_str()),
                Some("tar"),
                "left behind: {path:?}"
            );
        }
    }
}

pub fn stdout(outcome: &Outcome) -> String {
    outcome
        .logs
        .iter()
        .filter(|c| c.stream == fog_protocol::wire::LogStream::Stdout)
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect()
}

pub fn input(dir: &Path, name: &str, bytes: &[u8]) -> (InputBlob, B256, PathBuf) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let hash = sha256(bytes);
    (
        InputBlob {
            contentHash: hash,
            size: bytes.len() as u64,
            path: name.into(),
        },
        hash,
        path,
    )
}

/// The job's cgroup is gone (its container and mounts are checked by `Harness::assert_clean`).
pub fn assert_job_gone(executor: &Executor, job_id: B256) {
    assert!(
        !JobCgroup::new(&executor.container_name(job_id)).exists(),
        "cgroup of {job_id} left behind"
    );
}
