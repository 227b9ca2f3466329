//! Runs one job in a locked-down container through the local Docker engine
//! and reports exactly what ran and what it used.
//!
//! Sandbox: no network unless the spec asks and the miner allows; all
//! capabilities dropped; no-new-privileges; read-only root with a small
//! tmpfs `/tmp`; CPU, memory (no swap) and pids limits; a non-root user; the
//! job's own file system (inputs read-only at `/fog/in`, outputs at the
//! spec's output path, every volume the image declares) sized to its disk
//! limit in bytes and inodes; a wall-clock timeout that starts once the image
//! is present; a cap on the logs kept; the runtime the operator chose (runc,
//! or gVisor's runsc). The container, the job's file system, its cgroup and
//! any partial archive are removed on every path, kills included.
//!
//! A run is a sequence of steps, each with one owner:
//! 1. [`Executor::check_spec`]: the spec is valid and this miner may run it;
//! 2. [`Executor::ensure_image`]: the image is here (pulled by digest, not timed);
//! 3. [`JobSite::prepare`]: the job's file system, inputs, output and volume directories;
//! 4. [`Executor::create_container`]: the sandboxed container, refused if it got a volume we did not make;
//! 5. [`Executor::start_and_wait`]: start, follow logs and usage, stop at exit, timeout or cancel;
//! 6. [`Executor::collect_output`]: disk use and the bounded output archive;
//! 7. [`Executor::clean_up`]: container, anonymous volumes, cgroup, file system.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, StatsOptionsBuilder,
};
use fog_protocol::clock::SharedClock;
use fog_protocol::output::{
    ArchiveDigest, OutputError, SkippedEntry, output_limit, sha256, sha256_reader, write_archive,
};
use fog_protocol::wire::{Isolation, LogStream, RuntimeInfo};
use fog_protocol::{B256, INPUT_DIR, ImageRef, JobSpec, NetworkPolicy, SpecError};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::jobfs::{JobFs, JobFsError};
use crate::metering::{JobCgroup, Usage};

/// How much more log the engine may hold on disk than the executor keeps.
const ENGINE_LOG_HEADROOM: usize = 1 << 20;

/// The user jobs run as inside the container (nobody).
pub const JOB_USER: (u32, u32) = (65534, 65534);

/// Where the job's scratch tmpfs is mounted (also its working directory).
const SCRATCH_DIR: &str = "/tmp";

/// Bytes of disk per inode a job's file system gets: a job that makes
/// millions of empty files runs out of inodes, which is its disk being full.
pub const BYTES_PER_INODE: u64 = 16 << 10;
/// Fewest inodes of a job's file system.
const MIN_INODES: u64 = 256;

/// The first runc release with the fixes for every container escape known
/// when this was written (CVE-2024-21626 in 1.1.12; CVE-2025-31133,
/// CVE-2025-52565 and CVE-2025-52881 in 1.2.8).
const RUNC_FIXED: (u64, u64, u64) = (1, 2, 8);

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
    /// The engine's runtime for jobs (`runsc` for gVisor); `None`: the engine's default.
    pub runtime: Option<String>,
    /// The wall clock of receipts' start and end times.
    pub clock: SharedClock,
}

impl ExecutorConfig {
    pub fn new(work_dir: PathBuf) -> Self {
        Self {
            work_dir,
            pids_limit: 256,
            max_log_bytes: 1 << 20,
            scratch_bytes: 64 << 20,
            allow_network: false,
            runtime: None,
            clock: fog_protocol::clock::system(),
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
    #[error(
        "the Docker engine has no runtime {name:?} (it has: {available}); register it in /etc/docker/daemon.json or change sandbox.runtime"
    )]
    UnknownRuntime { name: String, available: String },
    #[error("image {0} is not on this machine")]
    MissingImage(String),
    #[error("pulling {image}: {reason}")]
    Pull { image: String, reason: String },
    #[error("image declares volume {path:?}: {reason}")]
    Volume { path: String, reason: String },
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

impl ExecError {
    /// Whose fault the failure is: the job's own when any miner would meet
    /// it (the spec, its inputs, its image, its output), else this miner's.
    pub fn fault(&self) -> fog_protocol::wire::Fault {
        use fog_protocol::wire::Fault;
        match self {
            Self::Spec(_)
            | Self::MissingImage(_)
            | Self::Pull { .. }
            | Self::Volume { .. }
            | Self::Input { .. } => Fault::Job,
            Self::Output(OutputError::TooLarge { .. }) => Fault::Job,
            Self::NetworkNotAllowed
            | Self::NoGpuRuntime(_)
            | Self::UnknownRuntime { .. }
            | Self::JobFs(_)
            | Self::Docker(_)
            | Self::Output(_)
            | Self::Io { .. } => Fault::Miner,
        }
    }
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
    /// Told once the container has started: the image is pulled and the
    /// inputs are in place, and the run's time limit starts counting.
    pub started: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A chunk of the job's output streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    pub stream: LogStream,
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
    /// Special files of the output directory left out of the archive by rule.
    pub skipped_outputs: Vec<SkippedEntry>,
    /// The output was over its limit (`output too large: N bytes, limit M`):
    /// the archive is only [`fog_protocol::output::OVER_LIMIT_MARKER`], and
    /// the job has failed, though the run was performed (and is paid).
    pub output_over_limit: Option<String>,
    /// Bytes the job wrote to its disk (output and anything else it left there).
    pub disk_used_bytes: u64,
    /// The job used all the disk (bytes or inodes) it asked for; its writes beyond failed.
    pub disk_full: bool,
    /// Logs beyond `max_log_bytes` were dropped.
    pub logs_truncated: bool,
    /// The logs kept, in order.
    pub logs: Vec<LogChunk>,
}

/// An image ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedImage {
    /// Its id (config digest).
    pub id: B256,
    /// The paths its `VOLUME` instructions declare.
    pub volumes: Vec<String>,
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
    /// The runtime jobs run under.
    runtime: RuntimeInfo,
    /// 8 hex characters naming this executor's work directory (see `container_name`).
    instance: String,
}

impl Executor {
    /// Connects to the local engine (DOCKER_HOST or the default socket),
    /// agreeing on an API version the engine speaks, and finds the runtime
    /// jobs will run under (warning when it has known escapes).
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
        let runtimes = info.runtimes.clone().unwrap_or_default();
        let gpu_runtime = runtimes.contains_key("nvidia");
        let name = config
            .runtime
            .clone()
            .or_else(|| info.default_runtime.clone())
            .unwrap_or_else(|| "runc".to_owned());
        let Some(entry) = runtimes.get(&name) else {
            let mut available: Vec<_> = runtimes.keys().cloned().collect();
            available.sort();
            return Err(ExecError::UnknownRuntime {
                name,
                available: available.join(", "),
            });
        };
        let path = entry.path.clone().unwrap_or_else(|| name.clone());
        let userns = info
            .security_options
            .iter()
            .flatten()
            .any(|o| o.split(',').any(|kv| kv == "name=userns"));
        let runtime = describe_runtime(&name, &path, userns).await;
        warn_on_known_escapes(&runtime);
        let work_dir =
            std::path::absolute(&config.work_dir).unwrap_or_else(|_| config.work_dir.clone());
        let instance = alloy::hex::encode(&sha256(work_dir.as_os_str().as_encoded_bytes())[..4]);
        Ok(Self {
            docker,
            config: ExecutorConfig { work_dir, ..config },
            exact_metering,
            gpu_runtime,
            runtime,
            instance,
        })
    }

    /// Now by the executor's clock: the chain's in a running miner.
    pub fn chain_now(&self) -> u64 {
        self.config.clock.unix_now()
    }

    /// The runtime jobs run under, as reported in the miner's offer.
    pub fn runtime(&self) -> &RuntimeInfo {
        &self.runtime
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
    /// killed mid-job: its containers (with their anonymous volumes), job
    /// file systems (unmounted), partial archives and cgroups. Returns how
    /// many containers were removed.
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
            self.docker
                .remove_container(&id, Some(remove_with_volumes()))
                .await?;
            removed += 1;
        }
        let work_dir = &self.config.work_dir;
        if work_dir.is_dir() {
            let entries = std::fs::read_dir(work_dir).map_err(io_err(work_dir))?;
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(PARTIAL_ARCHIVE_PREFIX) {
                    let path = entry.path();
                    std::fs::remove_file(&path).map_err(io_err(&path))?;
                    continue;
                }
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

    /// Makes sure the image is present and returns its id and declared
    /// volumes. A local id is used as is; a pinned reference is pulled by
    /// digest (the engine verifies the content against the digest).
    pub async fn ensure_image(&self, image: &ImageRef) -> Result<PreparedImage, ExecError> {
        let reference = image.to_string();
        let lookup = match image {
            ImageRef::LocalId(_) => reference.clone(),
            ImageRef::Pinned {
                repository, digest, ..
            } => {
                let by_digest = format!("{repository}@sha256:{}", alloy::hex::encode(digest));
                if self.docker.inspect_image(&by_digest).await.is_err() {
                    self.pull(&by_digest, &reference).await?;
                }
                by_digest
            }
        };
        let inspected = self.docker.inspect_image(&lookup).await.map_err(|e| {
            if matches!(image, ImageRef::LocalId(_)) {
                ExecError::MissingImage(reference.clone())
            } else {
                ExecError::Pull {
                    image: reference.clone(),
                    reason: e.to_string(),
                }
            }
        })?;
        let id = parse_image_id(inspected.id.as_deref(), &reference)?;
        let mut volumes = inspected.config.and_then(|c| c.volumes).unwrap_or_default();
        volumes.sort();
        Ok(PreparedImage { id, volumes })
    }

    async fn pull(&self, by_digest: &str, reference: &str) -> Result<(), ExecError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(by_digest)
            .build();
        let mut pull = self.docker.create_image(Some(options), None, None);
        while let Some(progress) = pull.next().await {
            progress.map_err(|e| ExecError::Pull {
                image: reference.to_owned(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Runs `spec` as job `job_id`. `inputs` maps each input's content hash to
    /// the file holding its bytes; see [`RunOptions`] for logs and cancelling.
    /// Whatever happens, nothing of the job but its archive (on success) is
    /// left on the machine.
    pub async fn run(
        &self,
        job_id: B256,
        spec: &JobSpec,
        inputs: &HashMap<B256, PathBuf>,
        options: RunOptions,
    ) -> Result<Outcome, ExecError> {
        let network = self.check_spec(spec)?;
        let image = self.ensure_image(&spec.image_ref()?).await?;
        let name = self.container_name(job_id);
        let cgroup = self.exact_metering.then(|| JobCgroup::new(&name));
        let site = JobSite::prepare(&self.config.work_dir, name, spec, &image, inputs)?;
        let result = self
            .execute(&site, cgroup.as_ref(), spec, &image, network, options)
            .await;
        let cleaned = self.clean_up(site, cgroup.as_ref()).await;
        let outcome = result?;
        if let Err(e) = cleaned {
            // The archive is the caller's only once the run succeeded as a whole.
            let _ = std::fs::remove_file(&outcome.output_archive);
            return Err(e);
        }
        Ok(outcome)
    }

    /// Step 1: the spec is valid now and asks for nothing this miner withholds.
    fn check_spec(&self, spec: &JobSpec) -> Result<NetworkPolicy, ExecError> {
        spec.validate(self.config.clock.unix_now())?;
        let network = spec.network_policy()?;
        if network != NetworkPolicy::None && !self.config.allow_network {
            return Err(ExecError::NetworkNotAllowed);
        }
        let gpus = spec.resources.gpuCount;
        if gpus > 0 && !self.gpu_runtime {
            return Err(ExecError::NoGpuRuntime(gpus));
        }
        Ok(network)
    }

    /// Steps 4 to 6 on a prepared site.
    async fn execute(
        &self,
        site: &JobSite,
        cgroup: Option<&JobCgroup>,
        spec: &JobSpec,
        image: &PreparedImage,
        network: NetworkPolicy,
        options: RunOptions,
    ) -> Result<Outcome, ExecError> {
        self.create_container(site, cgroup, spec, image, network)
            .await?;
        let log_sink = options.logs.clone();
        let ran = self.start_and_wait(site, cgroup, spec, options).await?;
        let (disk_used_bytes, disk_full) = site.disk_use(spec.resources.diskBytes)?;
        let (output, output_archive, skipped, output_over_limit) =
            self.collect_output(site, spec, ran.cancelled)?;
        let mut logs = ran.logs;
        if !skipped.is_empty() {
            // Told to the buyer in the job's own log, as the miner's words.
            let listed: Vec<String> = skipped
                .iter()
                .map(|s| format!("{} ({})", s.path.display(), s.kind))
                .collect();
            let chunk = LogChunk {
                stream: LogStream::Stderr,
                data: format!(
                    "fog-miner: left out of the output (only files, directories and symlinks are kept): {}\n",
                    listed.join(", ")
                )
                .into_bytes(),
            };
            if let Some(sink) = &log_sink {
                let _ = sink.send(chunk.clone()).await;
            }
            logs.push(chunk);
        }
        Ok(Outcome {
            image_id: image.id,
            exit_code: ran.exit_code,
            timed_out: ran.timed_out,
            oom_killed: ran.oom_killed,
            started_at: ran.started_at,
            ended_at: ran.ended_at,
            wall_time: ran.wall_time,
            cancelled: ran.cancelled,
            cpu_time_ms: ran.usage.cpu_time_ns / 1_000_000,
            peak_memory_bytes: ran.usage.peak_memory_bytes,
            output,
            output_archive,
            skipped_outputs: skipped,
            output_over_limit,
            disk_used_bytes,
            disk_full,
            logs_truncated: ran.logs_truncated,
            logs,
        })
    }

    /// Step 4: creates the sandboxed container, and refuses it if the engine
    /// gave it any volume the miner did not make (each would be disk outside
    /// the job's limit).
    async fn create_container(
        &self,
        site: &JobSite,
        cgroup: Option<&JobCgroup>,
        spec: &JobSpec,
        image: &PreparedImage,
        network: NetworkPolicy,
    ) -> Result<(), ExecError> {
        let body = self.container_body(site, cgroup, spec, image, network);
        self.docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::default()
                        .name(&site.name)
                        .build(),
                ),
                body,
            )
            .await?;
        let inspected = self.docker.inspect_container(&site.name, None).await?;
        if let Some(volume) = inspected
            .mounts
            .iter()
            .flatten()
            .find(|m| m.typ.as_deref() == Some("volume"))
        {
            return Err(ExecError::Volume {
                path: volume.destination.clone().unwrap_or_default(),
                reason: "the engine made a volume for it that the job's disk limit would not cover"
                    .into(),
            });
        }
        Ok(())
    }

    /// The container's whole configuration: the sandbox in one place.
    fn container_body(
        &self,
        site: &JobSite,
        cgroup: Option<&JobCgroup>,
        spec: &JobSpec,
        image: &PreparedImage,
        network: NetworkPolicy,
    ) -> ContainerCreateBody {
        let cpu = i64::try_from(spec.resources.cpuMillicores).unwrap_or(i64::MAX);
        let memory = i64::try_from(spec.resources.memoryBytes).unwrap_or(i64::MAX);
        let mut binds = vec![
            format!("{}:{INPUT_DIR}:ro", site.in_dir.display()),
            format!(
                "{}:{}:rw",
                site.out_dir.display(),
                spec.outputPath.trim_end_matches('/')
            ),
        ];
        binds.extend(
            site.volumes
                .iter()
                .map(|(host, path)| format!("{}:{path}:rw", host.display())),
        );
        let host_config = HostConfig {
            binds: Some(binds),
            network_mode: Some(
                if network == NetworkPolicy::None {
                    "none"
                } else {
                    "bridge"
                }
                .into(),
            ),
            runtime: self.config.runtime.clone(),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            privileged: Some(false),
            tmpfs: Some(HashMap::from([(
                SCRATCH_DIR.to_owned(),
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
        ContainerCreateBody {
            image: Some(format!("sha256:{}", alloy::hex::encode(image.id))),
            cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
            env: Some(
                spec.env
                    .iter()
                    .map(|e| format!("{}={}", e.name, e.value))
                    .collect(),
            ),
            user: Some(format!("{}:{}", JOB_USER.0, JOB_USER.1)),
            working_dir: Some(SCRATCH_DIR.into()),
            network_disabled: Some(network == NetworkPolicy::None),
            labels: Some(HashMap::from([
                ("org.fog.job".to_owned(), site.name.clone()),
                ("org.fog.instance".to_owned(), self.instance.clone()),
            ])),
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    /// Step 5: starts the container and follows it to its end: its own
    /// exit, the wall-clock limit (killed) or a cancel (killed).
    async fn start_and_wait(
        &self,
        site: &JobSite,
        cgroup: Option<&JobCgroup>,
        spec: &JobSpec,
        options: RunOptions,
    ) -> Result<Ran, ExecError> {
        let RunOptions {
            logs: log_sink,
            cancel,
            started: tell_started,
        } = options;
        let name = site.name.as_str();
        let started_at = self.config.clock.unix_now();
        let started = std::time::Instant::now();
        // Attached before the start, as `docker run` does: a job that floods
        // its output at once cannot outrun a follower that joins late (the
        // engine's own log file rotates and would hide how much was written).
        let attach = bollard::query_parameters::AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = self.docker.attach_container(name, Some(attach)).await?;
        self.docker.start_container(name, None).await?;
        if let Some(tell) = tell_started {
            let _ = tell.send(());
        }

        let logs = tokio::spawn(collect_logs(
            attached.output,
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
        let ended_at = self.config.clock.unix_now();

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
        Ok(Ran {
            exit_code,
            timed_out,
            oom_killed,
            cancelled,
            started_at,
            ended_at,
            wall_time,
            usage,
            logs,
            logs_truncated,
        })
    }

    /// Step 6: the deterministic archive of the output directory, bounded by
    /// [`output_limit`] of the job's disk; written beside the job under a
    /// temporary name that is removed on any error, and named
    /// `work_dir/<job>.tar` once complete.
    fn collect_output(
        &self,
        site: &JobSite,
        spec: &JobSpec,
        cancelled: bool,
    ) -> Result<(ArchiveDigest, PathBuf, Vec<SkippedEntry>, Option<String>), ExecError> {
        let work_dir = &self.config.work_dir;
        let mut over_limit = None;
        let partial = tempfile::Builder::new()
            .prefix(PARTIAL_ARCHIVE_PREFIX)
            .tempfile_in(work_dir)
            .map_err(io_err(work_dir))?;
        let limit = output_limit(spec.resources.diskBytes);
        // A stopped run's partial output is nobody's result: every stopped
        // replica reports the same empty output, so the time they used can
        // still be settled on their agreeing receipts.
        let empty = tempfile::tempdir_in(work_dir).map_err(io_err(work_dir))?;
        let source = if cancelled {
            empty.path()
        } else {
            site.out_dir.as_path()
        };
        let archived = match write_archive(
            source,
            std::io::BufWriter::new(partial.as_file()),
            limit,
        ) {
            // The run was performed: it ends with a receipt and is paid,
            // and its output is one file saying why the rest is missing.
            // (Unpaid, a buyer could take the logs and leave the bill.)
            Err(e @ fog_protocol::output::OutputError::TooLarge { size, limit }) => {
                tracing::warn!(job = %site.name, size, limit, "the output is over its limit: replaced by a note");
                over_limit = Some(e.to_string());
                partial
                    .as_file()
                    .set_len(0)
                    .map_err(io_err(partial.path()))?;
                let note = tempfile::tempdir_in(work_dir).map_err(io_err(work_dir))?;
                let marker = note.path().join(fog_protocol::output::OVER_LIMIT_MARKER);
                std::fs::write(&marker, fog_protocol::output::over_limit_text(size, limit))
                    .map_err(io_err(&marker))?;
                write_archive(
                    note.path(),
                    std::io::BufWriter::new(partial.reopen().map_err(io_err(partial.path()))?),
                    limit,
                )?
            }
            other => other?,
        };
        let path = work_dir.join(format!("{}.tar", site.name));
        partial.persist(&path).map_err(|e| io_err(&path)(e.error))?;
        Ok((archived.digest, path, archived.skipped, over_limit))
    }

    /// Step 7: the container (with any anonymous volume), the cgroup, then
    /// the job's file system. Every part is attempted; the first error is
    /// returned.
    async fn clean_up(&self, site: JobSite, cgroup: Option<&JobCgroup>) -> Result<(), ExecError> {
        let removed = self
            .docker
            .remove_container(&site.name, Some(remove_with_volumes()))
            .await;
        let container = match removed {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            })
            | Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(container = %site.name, error = %e, "removing the job's container");
                Err(ExecError::Docker(e))
            }
        };
        if let Some(cgroup) = cgroup
            && let Err(e) = cgroup.remove()
        {
            // A leftover empty cgroup costs a directory; `clean_leftovers` retries.
            tracing::warn!(cgroup = %site.name, error = %e, "removing the job's cgroup");
        }
        let fs = site.jobfs.remove().map_err(ExecError::from);
        container.and(fs)
    }
}

/// Where partial archives are written; a miner killed mid-write leaves one,
/// which `clean_leftovers` removes.
const PARTIAL_ARCHIVE_PREFIX: &str = ".fog-partial-";

fn remove_with_volumes() -> bollard::query_parameters::RemoveContainerOptions {
    RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build()
}

/// What step 5 saw.
#[derive(Debug)]
struct Ran {
    exit_code: i32,
    timed_out: bool,
    oom_killed: bool,
    cancelled: bool,
    started_at: u64,
    ended_at: u64,
    wall_time: Duration,
    usage: Usage,
    logs: Vec<LogChunk>,
    logs_truncated: bool,
}

/// A job's place on the miner: its file system and the directories on it.
#[derive(Debug)]
struct JobSite {
    /// The container's name, which also names the file system and cgroup.
    name: String,
    jobfs: JobFs,
    in_dir: PathBuf,
    out_dir: PathBuf,
    /// Host directory on the job's file system → the image's volume path.
    volumes: Vec<(PathBuf, String)>,
    /// Bytes in use on the file system before the job started (inputs, metadata).
    used_before: u64,
}

impl JobSite {
    /// Step 3: makes the job's file system — its disk allowance plus its
    /// inputs, in bytes and inodes — stages the inputs read-only, and makes
    /// the output directory and one directory per image volume, owned by
    /// the job's user. On an error the file system is removed.
    fn prepare(
        work_dir: &Path,
        name: String,
        spec: &JobSpec,
        image: &PreparedImage,
        inputs: &HashMap<B256, PathBuf>,
    ) -> Result<Self, ExecError> {
        let volume_paths = volumes_to_cover(spec, image)?;
        let input_bytes = spec
            .inputs
            .iter()
            .fold(0u64, |sum, i| sum.saturating_add(i.size));
        let disk = spec.resources.diskBytes;
        // Inputs and their directories need inodes of their own, beside the job's.
        let inodes = (disk / BYTES_PER_INODE)
            .max(MIN_INODES)
            .saturating_add(2 * spec.inputs.len() as u64)
            .saturating_add(volume_paths.len() as u64 + 8);
        let jobfs = JobFs::create(
            work_dir,
            &name,
            disk.saturating_add(input_bytes),
            inodes,
            JOB_USER,
        )?;
        let root = jobfs.path().to_owned();
        let in_dir = root.join("in");
        let out_dir = root.join("out");
        stage_inputs(spec, inputs, &in_dir)?;
        make_job_dir(&out_dir)?;
        let mut volumes = Vec::new();
        for (i, path) in volume_paths.into_iter().enumerate() {
            let host = root.join(format!("vol{i}"));
            make_job_dir(&host)?;
            volumes.push((host, path));
        }
        let (used_before, ..) = fs_usage(&out_dir)?;
        Ok(Self {
            name,
            jobfs,
            in_dir,
            out_dir,
            volumes,
            used_before,
        })
    }

    /// Bytes the job wrote, and whether its file system is full (bytes or
    /// inodes). ext4 keeps a reserve for delayed allocation after a job hits
    /// ENOSPC, so "no byte left" would miss a full disk; what the job itself
    /// wrote against what it was allowed is exact.
    fn disk_use(&self, allowed: u64) -> Result<(u64, bool), ExecError> {
        let (used, available, free_inodes) = fs_usage(&self.out_dir)?;
        let written = used.saturating_sub(self.used_before);
        Ok((
            written,
            written >= allowed || available == 0 || free_inodes == 0,
        ))
    }
}

/// The image's declared volume paths that need a directory of their own on
/// the job's file system: all but those the sandbox already mounts
/// (inputs, output, scratch). Each is refused unless it is a clean absolute path.
fn volumes_to_cover(spec: &JobSpec, image: &PreparedImage) -> Result<Vec<String>, ExecError> {
    let output = spec.outputPath.trim_end_matches('/');
    let mut covered = Vec::new();
    for declared in &image.volumes {
        let path = declared.trim_end_matches('/');
        let clean = path.starts_with('/')
            && Path::new(path)
                .components()
                .skip(1)
                .all(|c| matches!(c, std::path::Component::Normal(_)))
            && !path.contains(':')
            && !path.contains(',');
        if !clean || path.is_empty() {
            return Err(ExecError::Volume {
                path: declared.clone(),
                reason: "not a plain absolute path".into(),
            });
        }
        if [INPUT_DIR, output, SCRATCH_DIR].contains(&path) || covered.iter().any(|c| c == path) {
            continue;
        }
        covered.push(path.to_owned());
    }
    Ok(covered)
}

/// A directory on the job's file system that belongs to the job's user.
fn make_job_dir(path: &Path) -> Result<(), ExecError> {
    std::fs::create_dir(path).map_err(io_err(path))?;
    std::os::unix::fs::chown(path, Some(JOB_USER.0), Some(JOB_USER.1)).map_err(io_err(path))
}

/// What the runtime at `path` says about itself.
async fn describe_runtime(name: &str, path: &str, userns: bool) -> RuntimeInfo {
    let version = match tokio::process::Command::new(path)
        .arg("--version")
        .output()
        .await
    {
        Ok(out) if out.status.success() => {
            parse_runtime_version(&String::from_utf8_lossy(&out.stdout))
        }
        Ok(_) | Err(_) => None,
    }
    .unwrap_or_else(|| "unknown".to_owned());
    let binary = Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let isolation = if binary.starts_with("runsc") || name.starts_with("runsc") {
        Isolation::Gvisor
    } else if userns {
        Isolation::Userns
    } else {
        Isolation::Container
    };
    RuntimeInfo {
        name: name.to_owned(),
        version,
        isolation,
    }
}

/// The version from a runtime's `--version` output (`runc version 1.1.5+ds1`).
pub fn parse_runtime_version(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    let (_, version) = first.split_once(" version ")?;
    let version = version.trim();
    (!version.is_empty()).then(|| version.to_owned())
}

/// Whether a runc version predates the fixes of every known escape.
pub fn runc_has_known_escapes(version: &str) -> Option<bool> {
    let numbers: Vec<u64> = version
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [major, minor, patch] = numbers[..] else {
        return None;
    };
    Some((major, minor, patch) < RUNC_FIXED)
}

fn warn_on_known_escapes(runtime: &RuntimeInfo) {
    if runtime.isolation == Isolation::Gvisor || !runtime.version.contains('.') {
        return;
    }
    let binary_is_runc = runtime.name == "runc";
    if binary_is_runc && runc_has_known_escapes(&runtime.version) == Some(true) {
        tracing::warn!(
            runtime = %runtime.name,
            version = %runtime.version,
            "this runc predates 1.2.8 and has known container escapes (CVE-2024-21626, CVE-2025-31133, CVE-2025-52565, CVE-2025-52881) unless your distribution's build carries the fixes: upgrade runc, or run jobs under gVisor (sandbox.runtime = \"runsc\")"
        );
    }
}

fn parse_image_id(id: Option<&str>, reference: &str) -> Result<B256, ExecError> {
    id.and_then(|id| id.strip_prefix("sha256:"))
        .and_then(|hex| hex.parse::<B256>().ok())
        .ok_or_else(|| {
            ExecError::MissingImage(format!("{reference} (the engine reported no sha256 id)"))
        })
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

/// Bytes used, bytes available and inodes free on the file system holding `dir`.
fn fs_usage(dir: &Path) -> Result<(u64, u64, u64), ExecError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| ExecError::Io {
        path: dir.to_owned(),
        source: e.into(),
    })?;
    let used = st
        .f_blocks
        .saturating_sub(st.f_bfree)
        .saturating_mul(st.f_frsize);
    Ok((used, st.f_bavail.saturating_mul(st.f_frsize), st.f_ffree))
}

async fn collect_logs(
    mut stream: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    cap: usize,
    sink: Option<mpsc::Sender<LogChunk>>,
) -> (Vec<LogChunk>, bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_versions_are_read_and_judged() {
        assert_eq!(
            parse_runtime_version("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\n"),
            Some("1.1.5+ds1".into())
        );
        assert_eq!(
            parse_runtime_version("runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n"),
            Some("0.0~20221219.0".into())
        );
        assert_eq!(parse_runtime_version("garbage"), None);
        assert_eq!(runc_has_known_escapes("1.1.5+ds1"), Some(true));
        assert_eq!(runc_has_known_escapes("1.1.12"), Some(true));
        assert_eq!(runc_has_known_escapes("1.2.7"), Some(true));
        assert_eq!(runc_has_known_escapes("1.2.8"), Some(false));
        assert_eq!(runc_has_known_escapes("1.3.0-rc.1"), Some(false));
        assert_eq!(runc_has_known_escapes("unknown"), None);
    }

    fn spec_with_output(output: &str) -> JobSpec {
        JobSpec {
            outputPath: output.into(),
            ..Default::default()
        }
    }

    #[test]
    fn declared_volumes_get_a_directory_unless_the_sandbox_mounts_the_path() {
        let image = |v: &[&str]| PreparedImage {
            id: B256::ZERO,
            volumes: v.iter().map(|s| (*s).to_owned()).collect(),
        };
        let spec = spec_with_output("/fog/out");
        assert_eq!(
            volumes_to_cover(
                &spec,
                &image(&["/data", "/tmp", "/fog/out/", "/fog/in", "/data/"])
            )
            .unwrap(),
            vec!["/data".to_owned()]
        );
        for bad in ["relative", "/a/../b", "/a:/b", "/a,ro", "/"] {
            assert!(
                volumes_to_cover(&spec, &image(&[bad])).is_err(),
                "{bad} accepted"
            );
        }
    }
}
