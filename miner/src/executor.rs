//! Runs one job in a locked-down container through the local Docker engine
//! and reports exactly what ran and what it used.
//!
//! Sandbox: no network unless the spec asks and the miner allows; all
//! capabilities dropped; no-new-privileges; read-only root with a small
//! tmpfs `/tmp`; CPU, memory (no swap) and pids limits; a non-root user; the
//! job's own file system (inputs read-only at `/fog/in`, outputs at the
//! spec's output path) sized to its disk limit; a wall-clock timeout that
//! starts once the image is present; a cap on the logs kept. The container
//! and the job's file system are removed on every path, kills included.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StatsOptionsBuilder,
};
use fog_protocol::output::{ArchiveDigest, OutputError, sha256, sha256_reader, write_archive};
use fog_protocol::{B256, INPUT_DIR, ImageRef, JobSpec, NetworkPolicy, SpecError};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::jobfs::{JobFs, JobFsError};
use crate::metering::{JobCgroup, Usage};
use crate::runner::unix_now;

/// How much more log the engine may hold on disk than the executor keeps.
const ENGINE_LOG_HEADROOM: usize = 1 << 20;

/// The user jobs run as inside the container (nobody).
pub const JOB_USER: (u32, u32) = (65534, 65534);

/// How the executor runs jobs on this machine.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// Where job file systems and output archives live.
    pub work_dir: PathBuf,
    /// Most processes a job may have.
    pub pids_limit: i64,
    /// Most log bytes kept (and streamed) per job; the rest is dropped.
    pub max_log_bytes: usize,
    /// Size of the `/tmp` scratch tmpfs (it counts against the job's memory).
    pub scratch_bytes: u64,
    /// Whether jobs that ask for network access get it.
    pub allow_network: bool,
}

impl ExecutorConfig {
    pub fn new(work_dir: PathBuf) -> Self {
        Self {
            work_dir,
            pids_limit: 256,
            max_log_bytes: 1 << 20,
            scratch_bytes: 64 << 20,
            allow_network: false,
        }
    }
}

/// Why a job could not be run to an outcome.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("invalid spec: {0}")]
    Spec(#[from] SpecError),
    #[error("the spec asks for network access, which this miner does not allow")]
    NetworkNotAllowed,
    #[error(
        "the spec asks for {0} GPU(s), but the Docker engine has no nvidia runtime to give them"
    )]
    NoGpuRuntime(u32),
    #[error("image {0} is not on this machine")]
    MissingImage(String),
    #[error("pulling {image}: {reason}")]
    Pull { image: String, reason: String },
    #[error("input {path}: {reason}")]
    Input { path: String, reason: String },
    #[error("job file system: {0}")]
    JobFs(#[from] JobFsError),
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("collecting the output: {0}")]
    Output(#[from] OutputError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExecError + '_ {
    move |source| ExecError::Io {
        path: path.to_owned(),
        source,
    }
}

/// How a run is followed and stopped.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Receives log chunks as they come.
    pub logs: Option<mpsc::Sender<LogChunk>>,
    /// Kills the container when cancelled; the run still cleans up and reports.
    pub cancel: CancellationToken,
}

/// A chunk of the job's output streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    pub stream: fog_protocol::wire::LogStream,
    pub data: Vec<u8>,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The id (config digest) of the image that ran.
    pub image_id: B256,
    pub exit_code: i32,
    /// Killed at the wall-clock limit.
    pub timed_out: bool,
    /// Killed by the kernel for exceeding its memory.
    pub oom_killed: bool,
    /// Unix seconds.
    pub started_at: u64,
    pub ended_at: u64,
    /// Wall time from start to exit, measured on a monotonic clock.
    pub wall_time: Duration,
    /// Killed because the run was cancelled.
    pub cancelled: bool,
    pub cpu_time_ms: u64,
    pub peak_memory_bytes: u64,
    /// The deterministic archive of the output directory.
    pub output: ArchiveDigest,
    /// Where that archive is kept (`work_dir/<job>.tar`) until the caller uploads it.
    pub output_archive: PathBuf,
    /// Bytes the job wrote to its disk (output and anything else it left there).
    pub disk_used_bytes: u64,
    /// The job used all the disk it asked for (its writes beyond that failed).
    pub disk_full: bool,
    /// Logs beyond `max_log_bytes` were dropped.
    pub logs_truncated: bool,
    /// The logs kept, in order.
    pub logs: Vec<LogChunk>,
}

/// Runs jobs against the local Docker engine.
#[derive(Clone, Debug)]
pub struct Executor {
    docker: Docker,
    config: ExecutorConfig,
    /// The engine places containers under cgroup paths we name (its
    /// `cgroupfs` driver), so each job can be metered exactly.
    exact_metering: bool,
    /// The engine has the `nvidia` runtime: GPUs can be passed to containers.
    gpu_runtime: bool,
    /// 8 hex characters naming this executor's work directory (see `container_name`).
    instance: String,
}

impl Executor {
    /// Connects to the local engine (DOCKER_HOST or the default socket),
    /// agreeing on an API version the engine speaks.
    pub async fn connect(config: ExecutorConfig) -> Result<Self, ExecError> {
        let docker = Docker::connect_with_local_defaults()?
            .negotiate_version()
            .await?;
        let info = docker.info().await?;
        let exact_metering = info
            .cgroup_driver
            .as_ref()
            .is_some_and(|d| d.to_string() == "cgroupfs");
        if !exact_metering {
            tracing::warn!(
                driver = ?info.cgroup_driver,
                "the engine's cgroup driver is not cgroupfs: CPU time and peak memory are sampled about once a second"
            );
        }
        let gpu_runtime = info
            .runtimes
            .as_ref()
            .is_some_and(|r| r.contains_key("nvidia"));
        let work_dir =
            std::path::absolute(&config.work_dir).unwrap_or_else(|_| config.work_dir.clone());
        let instance = alloy::hex::encode(&sha256(work_dir.as_os_str().as_encoded_bytes())[..4]);
        Ok(Self {
            docker,
            config: ExecutorConfig { work_dir, ..config },
            exact_metering,
            gpu_runtime,
            instance,
        })
    }

    /// The name of a job's container, which also names its file system and
    /// cgroup: the job id and a tag of this executor's work directory, so
    /// that miners sharing one engine (each has its own work directory)
    /// never collide, even on replicas of one job.
    pub fn container_name(&self, job_id: B256) -> String {
        format!(
            "fog-{}-{}",
            alloy::hex::encode(&job_id[..10]),
            self.instance.clone()
        )
    }

    /// Removes what an earlier run of this executor left behind when it was
    /// killed mid-job: its containers, job file systems (unmounted) and
    /// cgroups. Returns how many containers were removed.
    pub async fn clean_leftovers(&self) -> Result<usize, ExecError> {
        use bollard::query_parameters::ListContainersOptionsBuilder;
        let tag = self.instance.clone();
        let label = format!("org.fog.instance={tag}");
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&HashMap::from([("label", vec![label.as_str()])]))
            .build();
        let mut removed = 0;
        for container in self.docker.list_containers(Some(options)).await? {
            let Some(id) = container.id else { continue };
            let remove = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            self.docker.remove_container(&id, Some(remove)).await?;
            removed += 1;
        }
        let work_dir = &self.config.work_dir;
        if work_dir.is_dir() {
            let entries = std::fs::read_dir(work_dir).map_err(io_err(work_dir))?;
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(stem) = name.strip_suffix(".img") else {
                    continue;
                };
                if stem.starts_with("fog-") && stem.ends_with(&tag) {
                    JobFs::reclaim(work_dir, stem)?;
                }
            }
        }
        for name in JobCgroup::named_like(&tag) {
            if let Err(e) = JobCgroup::new(&name).remove() {
                tracing::warn!(cgroup = name, error = %e, "removing a leftover cgroup");
            }
        }
        if removed > 0 {
            tracing::warn!(
                removed,
                "removed containers left by an earlier run of this miner"
            );
        }
        Ok(removed)
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Makes sure the image is present and returns its id. A local id is used
    /// as is; a pinned reference is pulled by digest (the engine verifies the
    /// content against the digest).
    pub async fn ensure_image(&self, image: &ImageRef) -> Result<B256, ExecError> {
        let reference = image.to_string();
        match image {
            ImageRef::LocalId(_) => {}
            ImageRef::Pinned {
                repository, digest, ..
            } => {
                let by_digest = format!("{repository}@sha256:{}", alloy::hex::encode(digest));
                if self.docker.inspect_image(&by_digest).await.is_err() {
                    let options = CreateImageOptionsBuilder::default()
                        .from_image(&by_digest)
                        .build();
                    let mut pull = self.docker.create_image(Some(options), None, None);
                    while let Some(progress) = pull.next().await {
                        progress.map_err(|e| ExecError::Pull {
                            image: reference.clone(),
                            reason: e.to_string(),
                        })?;
                    }
                }
                let inspected =
                    self.docker
                        .inspect_image(&by_digest)
                        .await
                        .map_err(|e| ExecError::Pull {
                            image: reference.clone(),
                            reason: e.to_string(),
                        })?;
                return parse_image_id(inspected.id.as_deref(), &reference);
            }
        }
        let inspected = self
            .docker
            .inspect_image(&reference)
            .await
            .map_err(|_| ExecError::MissingImage(reference.clone()))?;
        parse_image_id(inspected.id.as_deref(), &reference)
    }

    /// Runs `spec` as job `job_id`. `inputs` maps each input's content hash to
    /// the file holding its bytes; see [`RunOptions`] for logs and cancelling.
    pub async fn run(
        &self,
        job_id: B256,
        spec: &JobSpec,
        inputs: &HashMap<B256, PathBuf>,
        now: u64,
        options: RunOptions,
    ) -> Result<Outcome, ExecError> {
        let RunOptions { logs, cancel } = options;
        spec.validate(now)?;
        let network = spec.network_policy()?;
        if network != NetworkPolicy::None && !self.config.allow_network {
            return Err(ExecError::NetworkNotAllowed);
        }
        let gpus = spec.resources.gpuCount;
        if gpus > 0 && !self.gpu_runtime {
            return Err(ExecError::NoGpuRuntime(gpus));
        }
        let image_id = self.ensure_image(&spec.image_ref()?).await?;

        let name = self.container_name(job_id);
        // The inputs live on the job's file system too, beside its disk allowance.
        let input_bytes = spec
            .inputs
            .iter()
            .fold(0u64, |sum, i| sum.saturating_add(i.size));
        let jobfs = JobFs::create(
            &self.config.work_dir,
            &name,
            spec.resources.diskBytes.saturating_add(input_bytes),
            JOB_USER,
        )?;
        let cgroup = self.exact_metering.then(|| JobCgroup::new(&name));
        let result = self
            .run_in(
                &name,
                &jobfs,
                cgroup.as_ref(),
                image_id,
                spec,
                inputs,
                network,
                logs,
                cancel,
            )
            .await;
        // Always: the container first (it holds the mounts), then the file system.
        let removed = self
            .docker
            .remove_container(
                &name,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await;
        if let Err(e) = removed
            && !matches!(
                e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                }
            )
        {
            tracing::warn!(container = %name, error = %e, "removing the job's container");
        }
        if let Some(cgroup) = &cgroup {
            // Already logged; a leftover empty cgroup costs nothing but a directory.
            let _ = cgroup.remove();
        }
        let fs_removed = jobfs.remove();
        let outcome = result?;
        fs_removed?;
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_in(
        &self,
        name: &str,
        jobfs: &JobFs,
        cgroup: Option<&JobCgroup>,
        image_id: B256,
        spec: &JobSpec,
        inputs: &HashMap<B256, PathBuf>,
        network: NetworkPolicy,
        log_sink: Option<mpsc::Sender<LogChunk>>,
        cancel: CancellationToken,
    ) -> Result<Outcome, ExecError> {
        let in_dir = jobfs.path().join("in");
        let out_dir = jobfs.path().join("out");
        stage_inputs(spec, inputs, &in_dir)?;
        std::fs::create_dir(&out_dir).map_err(io_err(&out_dir))?;
        chown(&out_dir, JOB_USER)?;
        let (used_before, _) = disk_usage(&out_dir)?;

        let cpu = i64::try_from(spec.resources.cpuMillicores).unwrap_or(i64::MAX);
        let memory = i64::try_from(spec.resources.memoryBytes).unwrap_or(i64::MAX);
        let host_config = HostConfig {
            binds: Some(vec![
                format!("{}:{INPUT_DIR}:ro", in_dir.display()),
                format!(
                    "{}:{}:rw",
                    out_dir.display(),
                    spec.outputPath.trim_end_matches('/')
                ),
            ]),
            network_mode: Some(
                if network == NetworkPolicy::None {
                    "none"
                } else {
                    "bridge"
                }
                .into(),
            ),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            privileged: Some(false),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                // Owned by the job's user: the engine resets the mode of a
                // working directory it sets up, so the mode alone is not enough.
                format!(
                    "rw,nosuid,nodev,uid={},gid={},mode=1777,size={}",
                    JOB_USER.0, JOB_USER.1, self.config.scratch_bytes
                ),
            )])),
            nano_cpus: Some(cpu.saturating_mul(1_000_000)),
            memory: Some(memory),
            memory_swap: Some(memory),
            memory_swappiness: Some(0),
            pids_limit: Some(self.config.pids_limit),
            ipc_mode: Some("private".into()),
            cgroup_parent: cgroup.map(JobCgroup::docker_parent),
            device_requests: (spec.resources.gpuCount > 0).then(|| {
                vec![DeviceRequest {
                    driver: Some("nvidia".into()),
                    count: Some(i64::from(spec.resources.gpuCount)),
                    capabilities: Some(vec![vec!["gpu".into()]]),
                    ..Default::default()
                }]
            }),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                // The engine's own copy is bounded too (it protects the
                // host's disk), with room above what we keep so that it never
                // rotates away lines before the follower has read our share.
                config: Some(HashMap::from([
                    (
                        "max-size".to_owned(),
                        self.config
                            .max_log_bytes
                            .saturating_add(ENGINE_LOG_HEADROOM)
                            .to_string(),
                    ),
                    ("max-file".to_owned(), "1".to_owned()),
                ])),
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(format!("sha256:{}", alloy::hex::encode(image_id))),
            cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
            env: Some(
                spec.env
                    .iter()
                    .map(|e| format!("{}={}", e.name, e.value))
                    .collect(),
            ),
            user: Some(format!("{}:{}", JOB_USER.0, JOB_USER.1)),
            working_dir: Some("/tmp".into()),
            network_disabled: Some(network == NetworkPolicy::None),
            labels: Some(HashMap::from([
                ("org.fog.job".to_owned(), name.to_owned()),
                ("org.fog.instance".to_owned(), self.instance.clone()),
            ])),
            host_config: Some(host_config),
            ..Default::default()
        };
        self.docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(name).build()),
                body,
            )
            .await?;

        let started_at = unix_now();
        let started = std::time::Instant::now();
        self.docker.start_container(name, None).await?;

        let logs = tokio::spawn(collect_logs(
            self.docker.clone(),
            name.to_owned(),
            self.config.max_log_bytes,
            log_sink,
        ));
        let usage = std::sync::Arc::new(std::sync::Mutex::new(Usage::default()));
        let sampler = tokio::spawn(sample_usage(
            self.docker.clone(),
            name.to_owned(),
            usage.clone(),
        ));

        let limit = Duration::from_secs(spec.maxDurationSecs);
        let mut wait = self.docker.wait_container(name, None);
        let (timed_out, cancelled) = tokio::select! {
            _ = wait.next() => (false, false),
            _ = tokio::time::sleep(limit) => (true, false),
            _ = cancel.cancelled() => (false, true),
        };
        if timed_out || cancelled {
            let kill = KillContainerOptionsBuilder::default()
                .signal("KILL")
                .build();
            // The container may have just exited on its own: then there is nothing to kill.
            let _ = self.docker.kill_container(name, Some(kill)).await;
            let _ = self.docker.wait_container(name, None).next().await;
        }
        let wall_time = started.elapsed();
        let ended_at = unix_now();

        let inspected = self.docker.inspect_container(name, None).await?;
        let state = inspected.state.unwrap_or_default();
        let exit_code = state.exit_code.unwrap_or(-1);
        let exit_code = i32::try_from(exit_code).unwrap_or(i32::MIN);
        let oom_killed = state.oom_killed.unwrap_or(false);

        let (logs, logs_truncated) = logs.await.unwrap_or_default();
        sampler.abort();
        let sampled = *usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Every process of the job is dead now, so the cgroup's totals are final.
        let usage = cgroup.and_then(JobCgroup::usage).unwrap_or(sampled);

        // ext4 keeps a reserve for delayed allocation after a job hits
        // ENOSPC, so "no byte left" would miss a full disk; what the job
        // itself wrote against what it was allowed is exact.
        let (used_after, available) = disk_usage(&out_dir)?;
        let disk_used = used_after.saturating_sub(used_before);
        let disk_full = disk_used >= spec.resources.diskBytes || available == 0;
        let archive_path = self.config.work_dir.join(format!("{name}.tar"));
        let file = std::fs::File::create(&archive_path).map_err(io_err(&archive_path))?;
        let output = write_archive(&out_dir, std::io::BufWriter::new(file))?;

        Ok(Outcome {
            image_id,
            exit_code,
            timed_out,
            oom_killed,
            started_at,
            ended_at,
            wall_time,
            cancelled,
            cpu_time_ms: usage.cpu_time_ns / 1_000_000,
            peak_memory_bytes: usage.peak_memory_bytes,
            output,
            output_archive: archive_path,
            disk_used_bytes: disk_used,
            disk_full,
            logs_truncated,
            logs,
        })
    }
}

fn parse_image_id(id: Option<&str>, reference: &str) -> Result<B256, ExecError> {
    id.and_then(|id| id.strip_prefix("sha256:"))
        .and_then(|hex| hex.parse::<B256>().ok())
        .ok_or_else(|| {
            ExecError::MissingImage(format!("{reference} (the engine reported no sha256 id)"))
        })
}

fn chown(path: &Path, (uid, gid): (u32, u32)) -> Result<(), ExecError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_err(path))
}

/// Copies each input into the job's input directory after checking its hash
/// and size; the directory is then made read-only to the job.
fn stage_inputs(
    spec: &JobSpec,
    inputs: &HashMap<B256, PathBuf>,
    in_dir: &Path,
) -> Result<(), ExecError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(in_dir).map_err(io_err(in_dir))?;
    for blob in &spec.inputs {
        let bad = |reason: String| ExecError::Input {
            path: blob.path.clone(),
            reason,
        };
        let source = inputs
            .get(&blob.contentHash)
            .ok_or_else(|| bad(format!("no blob with hash {}", blob.contentHash)))?;
        // Validated specs have relative paths without `..`, so this stays inside `in_dir`.
        let target = in_dir.join(&blob.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        // Copy first, then check the copy: the source may change under us,
        // the copy on the job's own file system cannot.
        let size = std::fs::copy(source, &target)
            .map_err(|e| bad(format!("{}: {e}", source.display())))?;
        if size != blob.size {
            return Err(bad(format!("{size} bytes, the spec says {}", blob.size)));
        }
        let copy = std::fs::File::open(&target).map_err(io_err(&target))?;
        let hash = sha256_reader(std::io::BufReader::new(copy)).map_err(io_err(&target))?;
        if hash != blob.contentHash {
            return Err(bad(format!(
                "content does not hash to {}",
                blob.contentHash
            )));
        }
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o444))
            .map_err(io_err(&target))?;
    }
    std::fs::set_permissions(in_dir, std::fs::Permissions::from_mode(0o555)).map_err(io_err(in_dir))
}

/// Bytes used and still available on the file system holding `dir`.
fn disk_usage(dir: &Path) -> Result<(u64, u64), ExecError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| ExecError::Io {
        path: dir.to_owned(),
        source: e.into(),
    })?;
    let used = st
        .f_blocks
        .saturating_sub(st.f_bfree)
        .saturating_mul(st.f_frsize);
    Ok((used, st.f_bavail.saturating_mul(st.f_frsize)))
}

async fn collect_logs(
    docker: Docker,
    name: String,
    cap: usize,
    sink: Option<mpsc::Sender<LogChunk>>,
) -> (Vec<LogChunk>, bool) {
    use fog_protocol::wire::LogStream;
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(&name, Some(options));
    let mut kept = Vec::new();
    let mut total = 0usize;
    let mut truncated = false;
    while let Some(item) = stream.next().await {
        let Ok(item) = item else { break };
        let (stream, bytes) = match item {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (LogStream::Stdout, message)
            }
            LogOutput::StdErr { message } => (LogStream::Stderr, message),
            LogOutput::StdIn { .. } => continue,
        };
        let room = cap.saturating_sub(total);
        if room == 0 {
            truncated = true;
            continue; // keep draining so the engine is not blocked on us
        }
        let take = bytes.len().min(room);
        truncated |= take < bytes.len();
        total += take;
        let chunk = LogChunk {
            stream,
            data: bytes[..take].to_vec(),
        };
        if let Some(sink) = &sink {
            let _ = sink.send(chunk.clone()).await;
        }
        kept.push(chunk);
    }
    (kept, truncated)
}

/// Follows the engine's stats stream (about one sample a second), keeping the
/// highest CPU total and memory peak seen. A job shorter than the first
/// sample reports what that sample saw, possibly zero.
async fn sample_usage(docker: Docker, name: String, into: std::sync::Arc<std::sync::Mutex<Usage>>) {
    let options = StatsOptionsBuilder::default().stream(true).build();
    let mut stream = docker.stats(&name, Some(options));
    while let Some(Ok(stats)) = stream.next().await {
        let mut usage = into
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cpu) = stats
            .cpu_stats
            .as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
        {
            usage.cpu_time_ns = usage.cpu_time_ns.max(cpu);
        }
        if let Some(mem) = stats.memory_stats.as_ref() {
            usage.peak_memory_bytes = usage
                .peak_memory_bytes
                .max(mem.max_usage.or(mem.usage).unwrap_or(0));
        }
    }
}
