//! `fog devnet up|status|logs|down`: a persistent local market a buyer can
//! try their own jobs on — anvil (its state kept across `down`/`up`), the
//! contracts, a hub, two miners on the local Docker engine, a local OCI
//! registry, and a funded buyer key — and a profile so that plain `fog`
//! commands use it.
//!
//! Everything lives in one directory (`$XDG_STATE_HOME/fog/devnet`, or
//! `~/.local/state/fog/devnet`, or `--dir`): keys and their password, the
//! deployment, each service's configuration, log and pid file. The services
//! run in their own process groups, so they outlive the command that started
//! them; `down` stops them (anvil saves the chain as it stops).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use fog_protocol::deploy::{DeployParams, Deployment, deploy};
use serde::{Deserialize, Serialize};

use crate::ops;

/// anvil's first development account: deploys and funds the devnet.
const ANVIL_KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Marks a configuration file `up` wrote, which `up` may therefore replace.
const PROFILE_MARK: &str = "# written by `fog devnet up`";
/// The services, in the order they start (and, reversed, stop).
pub const SERVICES: [&str; 5] = ["chain", "registry", "hub", "miner-1", "miner-2"];
/// What the buyer, the operator and the miners start with.
const BUYER_TOKENS: u64 = 1_000;
const OPERATOR_TOKENS: u64 = 20_000;
const HUB_DEPOSIT: u64 = 10_000;

/// Why the devnet could not be brought up, read or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find {what}: {hint}")]
    Missing { what: &'static str, hint: String },
    #[error(
        "{service} did not come up{}; its log ({log}) ends:\n{tail}\n(`fog devnet up` again retries from where it stopped)",
        ended.as_ref().map_or_else(|| format!(" within {secs} s"), |e| format!(": it {e}"))
    )]
    NotReady {
        service: String,
        secs: u64,
        log: PathBuf,
        tail: String,
        /// How the process ended, if it did.
        ended: Option<String>,
    },
    #[error(transparent)]
    Ops(#[from] ops::OpsError),
    #[error("{0}")]
    Setup(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevnetError + '_ {
    move |source| DevnetError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the devnet remembers between `up`s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevnetState {
    pub rpc_port: u16,
    pub hub_port: u16,
    pub registry_port: u16,
    /// The hub's address (its HubWallet).
    pub hub: Address,
    pub buyer: Address,
}

/// What `fog devnet status --json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The chain's JSON-RPC endpoint.
    pub rpc: String,
    /// The hub's URL.
    pub hub: String,
    pub hub_address: Address,
    /// The registry to push images to (`docker push <registry>/NAME:TAG`).
    pub registry: String,
    /// The funded buyer key the profile uses.
    pub buyer: Address,
    pub buyer_keystore: PathBuf,
    /// The profile plain `fog` commands read.
    pub profile: PathBuf,
    pub dir: PathBuf,
    /// Each service: running or not.
    pub services: Vec<ServiceStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub name: String,
    pub pid: Option<u32>,
    pub running: bool,
    pub log: PathBuf,
}

/// The devnet's directory and everything in it.
#[derive(Clone, Debug)]
pub struct Devnet {
    dir: PathBuf,
}

/// Where a devnet lives unless told otherwise.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map(|base| base.join("fog/devnet"))
}

/// The profile file plain `fog` commands read by default.
pub fn default_profile() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|base| base.join("fog/config.toml"))
}

impl Devnet {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn log(&self, service: &str) -> PathBuf {
        self.path(&format!("logs/{service}.log"))
    }

    fn pid_file(&self, service: &str) -> PathBuf {
        self.path(&format!("pids/{service}.pid"))
    }

    pub fn deployment_file(&self) -> PathBuf {
        self.path("deployment.json")
    }

    pub fn keystore(&self, role: &str) -> PathBuf {
        self.path(&format!("keys/{role}.json"))
    }

    pub fn password_file(&self) -> PathBuf {
        self.path("keys/password")
    }

    /// The profile `up` writes in the devnet's directory (always) and at the
    /// default location (when nothing else is there).
    pub fn profile(&self) -> PathBuf {
        self.path("profile.toml")
    }

    fn state_file(&self) -> PathBuf {
        self.path("devnet.json")
    }

    pub fn state(&self) -> Result<Option<DevnetState>, DevnetError> {
        let path = self.state_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| DevnetError::Setup(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The pid of `service` if it is running (its pid file names a live
    /// process of the expected program).
    pub fn running(&self, service: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.pid_file(service)).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let program = String::from_utf8_lossy(&cmdline);
        let expected = match service {
            "chain" => "anvil",
            "registry" => "registry",
            "hub" => "fog-hub",
            _ => "fog-miner",
        };
        program.contains(expected).then_some(pid)
    }

    pub fn status(&self) -> Result<Option<Status>, DevnetError> {
        let Some(state) = self.state()? else {
            return Ok(None);
        };
        Ok(Some(Status {
            rpc: format!("http://127.0.0.1:{}", state.rpc_port),
            hub: format!("http://127.0.0.1:{}", state.hub_port),
            hub_address: state.hub,
            registry: format!("127.0.0.1:{}", state.registry_port),
            buyer: state.buyer,
            buyer_keystore: self.keystore("buyer"),
            profile: self.profile(),
            dir: self.dir.clone(),
            services: SERVICES
                .iter()
                .map(|name| {
                    let pid = self.running(name);
                    ServiceStatus {
                        name: (*name).to_owned(),
                        pid,
                        running: pid.is_some(),
                        log: self.log(name),
                    }
                })
                .collect(),
        }))
    }

    /// Stops every service, the chain last (it saves its state as it stops).
    /// Returns the services that were running.
    pub fn down(&self) -> Vec<String> {
        let mut stopped = Vec::new();
        for service in SERVICES.iter().rev() {
            if let Some(pid) = self.running(service) {
                stop(pid);
                stopped.push((*service).to_owned());
            }
            let _ = std::fs::remove_file(self.pid_file(service));
        }
        stopped
    }

    /// Brings the devnet up, creating it on first use; `progress` hears each
    /// step. Returns whether it was already up, and its status.
    pub async fn up(
        &self,
        tools: &Tools,
        mut progress: impl FnMut(&str),
    ) -> Result<(bool, Status), DevnetError> {
        for sub in ["logs", "pids", "keys"] {
            let p = self.path(sub);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        if SERVICES.iter().all(|s| self.running(s).is_some())
            && let Some(status) = self.status()?
        {
            return Ok((true, status));
        }
        // Half up (a crash, a reboot): start again from a clean slate of processes.
        self.down();
        let password = self.password()?;
        let existing = self.state()?;
        let (rpc_port, hub_port, registry_port) = match &existing {
            Some(s) => (s.rpc_port, s.hub_port, s.registry_port),
            None => free_ports()?,
        };
        let rpc = format!("http://127.0.0.1:{rpc_port}");
        let hub_url = format!("http://127.0.0.1:{hub_port}");

        progress(&format!("starting the chain (anvil) on {rpc}"));
        let chain_state = self.path("chain-state.json");
        self.spawn(
            "chain",
            Command::new(&tools.anvil)
                .arg("--port")
                .arg(rpc_port.to_string())
                .arg("--state")
                .arg(&chain_state)
                // A block every 2 s besides one per transaction: the
                // chain's clock (its latest block) keeps up with the wall
                // clock, as on a real chain, so deadlines computed from it
                // hold when the devnet has been idle.
                .args(["--block-time", "2", "--mixed-mining"])
                .arg("--silent"),
        )?;
        self.wait("chain", 30, || async {
            reqwest::Client::new()
                .post(&rpc)
                .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await?;

        let state = match existing {
            Some(state) if self.deployment_file().is_file() => state,
            _ => {
                let state = self
                    .create(
                        &rpc,
                        &hub_url,
                        rpc_port,
                        hub_port,
                        registry_port,
                        &password,
                        &mut progress,
                    )
                    .await?;
                let path = self.state_file();
                let text = serde_json::to_string_pretty(&state)
                    .map_err(|e| DevnetError::Setup(e.to_string()))?;
                std::fs::write(&path, text).map_err(io(&path))?;
                state
            }
        };

        progress(&format!(
            "starting the image registry on 127.0.0.1:{registry_port}"
        ));
        let registry_config = self.write_registry_config(registry_port)?;
        self.spawn(
            "registry",
            Command::new(&tools.registry)
                .arg("serve")
                .arg(&registry_config),
        )?;
        let registry_url = format!("http://127.0.0.1:{registry_port}/v2/");
        self.wait("registry", 30, || async {
            reqwest::get(&registry_url)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await?;

        progress(&format!("starting the hub on {hub_url}"));
        let hub_config = self.write_hub_config(&state, &rpc)?;
        self.spawn(
            "hub",
            Command::new(&tools.hub)
                .args(["serve", "--config"])
                .arg(&hub_config)
                .arg("--password-file")
                .arg(self.password_file())
                .env_remove("FOG_HUB_URL"),
        )?;
        let health = format!("{hub_url}/healthz");
        self.wait("hub", 60, || async {
            reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await?;

        progress("starting two miners on this machine's Docker engine");
        for n in [1, 2] {
            let service = format!("miner-{n}");
            let config = self.write_miner_config(n, &state, &rpc, &hub_url)?;
            self.spawn(
                &service,
                Command::new(&tools.miner)
                    .args(["run", "--config"])
                    .arg(&config)
                    .arg("--password-file")
                    .arg(self.password_file())
                    .env("FOG_LOG", "info"),
            )?;
        }
        let metrics = format!("{hub_url}/metrics");
        self.wait("miner-2", 90, || async {
            let Ok(r) = reqwest::get(&metrics).await else {
                return false;
            };
            r.text()
                .await
                .is_ok_and(|t| t.lines().any(|l| l == "fog_hub_miners_connected 2"))
        })
        .await?;

        self.write_profile(&state, &rpc, &hub_url)?;
        let status = self
            .status()?
            .ok_or_else(|| DevnetError::Setup("the devnet's state vanished".into()))?;
        Ok((false, status))
    }

    /// The devnet's keystore password, made on first use (random, owner-only).
    fn password(&self) -> Result<String, DevnetError> {
        let path = self.password_file();
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(text.trim().to_owned());
        }
        let mut bytes = [0u8; 16];
        rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
        let password = alloy::hex::encode(bytes);
        std::fs::write(&path, &password).map_err(io(&path))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(io(&path))?;
        Ok(password)
    }

    /// First `up`: deploys, makes and funds the keys, registers the hub.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        rpc: &str,
        hub_url: &str,
        rpc_port: u16,
        hub_port: u16,
        registry_port: u16,
        password: &str,
        progress: &mut impl FnMut(&str),
    ) -> Result<DevnetState, DevnetError> {
        progress("deploying Fog's contracts");
        let deployer: alloy::signers::local::PrivateKeySigner = ANVIL_KEY_0
            .parse()
            .map_err(|e| DevnetError::Setup(format!("anvil's key: {e}")))?;
        let provider = ops::signing_provider(rpc, deployer.clone())?;
        let deployment = deploy(
            &provider,
            deployer.address(),
            &DeployParams::devnet(deployer.address()),
        )
        .await
        .map_err(|e| DevnetError::Setup(format!("deploying the contracts: {e}")))?;
        deployment
            .save(&self.deployment_file())
            .map_err(|e| DevnetError::Setup(e.to_string()))?;

        progress("making keys for the buyer, the hub and two miners, and funding them");
        let address = |role: &str| -> Result<Address, DevnetError> {
            let path = self.keystore(role);
            if path.is_file() {
                return fog_protocol::keys::address(&path)
                    .map_err(|e| DevnetError::Setup(e.to_string()));
            }
            fog_protocol::keys::create(&path, password)
                .map_err(|e| DevnetError::Setup(e.to_string()))
        };
        let buyer = address("buyer")?;
        let operator = address("operator")?;
        let signer = address("hub-signer")?;
        let miners = [address("miner-1")?, address("miner-2")?];
        let unit = U256::from(10u64).pow(U256::from(18u64));
        ops::devnet_faucet(rpc, &deployment, buyer, U256::from(BUYER_TOKENS) * unit).await?;
        ops::devnet_faucet(
            rpc,
            &deployment,
            operator,
            U256::from(OPERATOR_TOKENS) * unit,
        )
        .await?;
        for who in [signer, miners[0], miners[1]] {
            ops::devnet_faucet(rpc, &deployment, who, U256::ZERO).await?;
        }

        progress("registering the hub (10,000 FOG deposit, 5% commission)");
        let operator_key = fog_protocol::keys::open(&self.keystore("operator"), password)
            .map_err(|e| DevnetError::Setup(e.to_string()))?;
        let operator_provider = ops::signing_provider(rpc, operator_key)?;
        let (hub, _) = ops::hub_register(
            &operator_provider,
            &deployment,
            operator,
            signer,
            500,
            hub_url,
            U256::from(HUB_DEPOSIT) * unit,
        )
        .await?;
        // Mine a block so the next reads see it everywhere.
        let _ = provider.get_block_number().await;
        Ok(DevnetState {
            rpc_port,
            hub_port,
            registry_port,
            hub,
            buyer,
        })
    }

    fn write(&self, name: &str, text: &str) -> Result<PathBuf, DevnetError> {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
        Ok(path)
    }

    fn write_registry_config(&self, port: u16) -> Result<PathBuf, DevnetError> {
        let storage = self.path("registry");
        self.write(
            "registry.yml",
            &format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
    }

    fn write_hub_config(&self, state: &DevnetState, rpc: &str) -> Result<PathBuf, DevnetError> {
        self.write(
            "hub/hub.toml",
            &format!(
                "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"sqlite://{db}\"\nblob_dir = \"{blobs}\"\ndeployment = \"{deployment}\"\nrpc_url = \"{rpc}\"\nhub = \"{hub}\"\nkeystore = \"{keystore}\"\nlog_format = \"human\"\n\n[miners]\nheartbeat_interval_ms = 1000\ntimeout_ms = 5000\n",
                port = state.hub_port,
                db = self.path("hub/hub.db").display(),
                blobs = self.path("hub/blobs").display(),
                deployment = self.deployment_file().display(),
                hub = state.hub,
                keystore = self.keystore("hub-signer").display(),
            ),
        )
    }

    fn write_miner_config(
        &self,
        n: u8,
        state: &DevnetState,
        rpc: &str,
        hub_url: &str,
    ) -> Result<PathBuf, DevnetError> {
        self.write(
            &format!("miner-{n}/miner.toml"),
            &format!(
                "keystore = \"{keystore}\"\nhub_url = \"{hub_url}\"\nwork_dir = \"{work}\"\n\n[offer]\ncpu_millicores = 1000\nmemory_bytes = 1073741824\ndisk_bytes = 2147483648\nregion = \"local\"\n\n[price]\nper_core_hour = \"0.5\"\n\n[chain]\ndeployment = \"{deployment}\"\nrpc_url = \"{rpc}\"\nhub = \"{hub}\"\n",
                keystore = self.keystore(&format!("miner-{n}")).display(),
                work = self.path(&format!("miner-{n}/work")).display(),
                deployment = self.deployment_file().display(),
                hub = state.hub,
            ),
        )
    }

    /// The profile in the devnet's directory, and at the default location
    /// unless another profile is there (then `FOG_CONFIG` picks this one).
    fn write_profile(
        &self,
        state: &DevnetState,
        rpc: &str,
        hub_url: &str,
    ) -> Result<(), DevnetError> {
        let text = format!(
            "{PROFILE_MARK} (its directory: {dir}); plain `fog` commands use the devnet.\nkeystore = \"{keystore}\"\npassword_file = \"{password}\"\nhub = \"{hub_url}\"\ndeployment = \"{deployment}\"\nchain_rpc = \"{rpc}\"\n",
            dir = self.dir.display(),
            keystore = self.keystore("buyer").display(),
            password = self.password_file().display(),
            deployment = self.deployment_file().display(),
        );
        let _ = state;
        let own = self.profile();
        std::fs::write(&own, &text).map_err(io(&own))?;
        if let Some(default) = default_profile() {
            let ours = std::fs::read_to_string(&default)
                .map(|t| t.starts_with(PROFILE_MARK))
                .unwrap_or(true);
            if ours {
                if let Some(parent) = default.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                std::fs::write(&default, &text).map_err(io(&default))?;
            }
        }
        Ok(())
    }

    /// Whether `up` wrote the default profile (else the user points at ours).
    pub fn owns_default_profile(&self) -> bool {
        default_profile()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|t| {
                t.starts_with(PROFILE_MARK) && t.contains(&self.dir.display().to_string())
            })
    }

    /// Starts `service` in its own process group, logging to its log file.
    fn spawn(&self, service: &str, command: &mut Command) -> Result<u32, DevnetError> {
        use std::os::unix::process::CommandExt;
        let log_path = self.log(service);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let err = log.try_clone().map_err(io(&log_path))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .env_remove("RUST_BACKTRACE")
            .process_group(0)
            .spawn()
            .map_err(|e| {
                DevnetError::Setup(format!(
                    "starting {service} ({:?}): {e}",
                    command.get_program()
                ))
            })?;
        let pid = child.id();
        let pid_path = self.pid_file(service);
        std::fs::write(&pid_path, pid.to_string()).map_err(io(&pid_path))?;
        // The child is detached: it outlives this command and is reaped by init.
        std::mem::forget(child);
        // `spawn` returns once the child is inside execve, before the kernel
        // has set up its new command line (/proc/PID/cmdline reads empty for
        // a moment, longer on a loaded machine): wait for it, so that
        // `running` (which checks the command line against PID reuse) sees
        // the service, and `down` can stop it.
        let settled = Instant::now() + Duration::from_secs(5);
        while self.running(service).is_none() && Instant::now() < settled {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z") {
                break; // it has already exited: `wait` reports how
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(pid)
    }

    /// How a service this process started has ended, if it has (its exit
    /// status or signal, collected so it is not left a zombie).
    fn reap(&self, service: &str) -> Option<String> {
        use rustix::process::{Pid, WaitOptions, waitpid};
        let text = std::fs::read_to_string(self.pid_file(service)).ok()?;
        let pid = Pid::from_raw(text.trim().parse().ok()?)?;
        let (_, status) = waitpid(Some(pid), WaitOptions::NOHANG).ok()??;
        Some(if let Some(code) = status.exit_status() {
            format!("exited with status {code}")
        } else if let Some(signal) = status.terminating_signal() {
            format!("was killed by signal {signal}")
        } else {
            "stopped".to_owned()
        })
    }

    /// Waits until `ready` says so, or fails with the end of the service's log.
    async fn wait<F, Fut>(&self, service: &str, secs: u64, ready: F) -> Result<(), DevnetError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if ready().await {
                return Ok(());
            }
            let log = self.log(service);
            if Instant::now() > deadline || self.running(service).is_none() {
                let ended = self.reap(service);
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                self.down();
                return Err(DevnetError::NotReady {
                    service: service.to_owned(),
                    secs,
                    log,
                    tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                    ended,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The programs a devnet runs.
#[derive(Clone, Debug)]
pub struct Tools {
    pub anvil: PathBuf,
    pub registry: PathBuf,
    pub hub: PathBuf,
    pub miner: PathBuf,
}

impl Tools {
    /// Finds each program: an environment override (FOG_ANVIL, FOG_REGISTRY,
    /// FOG_HUB_BIN, FOG_MINER_BIN), beside this `fog` binary, in a checkout's
    /// npm toolchain (anvil), or on PATH.
    pub fn find() -> Result<Self, DevnetError> {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let find = |var: &str, name: &str, extra: &[PathBuf], hint: &str, what: &'static str| {
            if let Some(path) = std::env::var_os(var) {
                return Ok(PathBuf::from(path));
            }
            let mut candidates: Vec<PathBuf> = exe_dir.iter().map(|d| d.join(name)).collect();
            candidates.extend_from_slice(extra);
            if let Some(path) = candidates.into_iter().find(|p| p.is_file()) {
                return Ok(path);
            }
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| DevnetError::Missing {
                    what,
                    hint: format!("{hint} (or set {var})"),
                })
        };
        let checkout_anvil: Vec<PathBuf> = exe_dir
            .iter()
            .map(|d| d.join("../../contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"))
            .collect();
        Ok(Self {
            anvil: find(
                "FOG_ANVIL",
                "anvil",
                &checkout_anvil,
                "install Foundry's anvil (`make setup` in a checkout installs it from npm)",
                "anvil",
            )?,
            registry: find(
                "FOG_REGISTRY",
                "docker-registry",
                &[],
                "install an OCI registry (Debian: `apt-get install docker-registry`)",
                "docker-registry",
            )?,
            hub: find(
                "FOG_HUB_BIN",
                "fog-hub",
                &[],
                "build it (`cargo build --bins`) or install it beside fog",
                "fog-hub",
            )?,
            miner: find(
                "FOG_MINER_BIN",
                "fog-miner",
                &[],
                "build it (`cargo build --bins`) or install it beside fog",
                "fog-miner",
            )?,
        })
    }
}

/// The deployment of a devnet that is up.
pub fn deployment(devnet: &Devnet) -> Result<Deployment, DevnetError> {
    Deployment::load(&devnet.deployment_file()).map_err(|e| DevnetError::Setup(e.to_string()))
}

/// Three distinct free ports: the listeners are held until all three are
/// known, so the kernel cannot hand the same port out twice.
fn free_ports() -> Result<(u16, u16, u16), DevnetError> {
    let bad = |e: std::io::Error| DevnetError::Setup(format!("finding a free port: {e}"));
    let listeners = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").map_err(bad))
        .collect::<Result<Vec<_>, _>>()?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(bad))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((ports[0], ports[1], ports[2]))
}

/// SIGTERM, up to 10 s to go, then SIGKILL.
fn stop(pid: u32) {
    use rustix::process::{Pid, Signal, kill_process};
    let Some(pid_t) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let signal = |sig: Signal| {
        // Already gone is fine.
        let _ = kill_process(pid_t, sig);
    };
    signal(Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(Signal::KILL);
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(false)
}
