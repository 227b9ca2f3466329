//! A whole marketplace on one machine for cross-process tests: a devnet with
//! the contracts, a registered hub running as a real `fog-hub` process,
//! real `fog-miner run` processes, and buyers talking HTTP to the hub.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail, ensure};
use fog_protocol::output::sha256;
use fog_protocol::{Address, B256, InputBlob, JobSpec, Placement, Resources, SignedJobSpec, U256};
use serde_json::{Value, json};

use crate::devnet::{Devnet, JobTerms};

/// Password of every keystore the fleet makes.
pub const PASSWORD: &str = "fleet test password";

/// Id of the busybox test image (`make setup` builds it).
pub fn test_image_id() -> anyhow::Result<String> {
    image_id("fog-test/busybox:latest")
}

/// Id (`sha256:…`) of a local test image (`make setup` builds tests/images/*).
pub fn image_id(image: &str) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .context("running docker")?;
    ensure!(
        out.status.success(),
        "the test image {image} is missing: run `make setup`"
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn keystore(dir: &Path, name: &str) -> anyhow::Result<(PrivateKeySigner, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let (key, _) =
        PrivateKeySigner::new_keystore(dir, &mut rand::thread_rng(), PASSWORD, Some(name))
            .map_err(|e| anyhow::anyhow!("keystore: {e}"))?;
    Ok((key, dir.join(name)))
}

/// A child process that is killed when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf) -> anyhow::Result<Self> {
        let file = std::fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        Ok(Self {
            child: Some(child),
            log,
        })
    }

    /// `kill -9`: no chance to clean up, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: asks it to stop as an operator would.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let pid = self.pid().context("not running")?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM {pid} failed");
        Ok(())
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The devnet, the hub and its files.
#[derive(Debug)]
pub struct Fleet {
    pub devnet: Devnet,
    pub dir: tempfile::TempDir,
    pub hub: Address,
    pub hub_url: String,
    pub hub_proc: Proc,
    pub hub_config: PathBuf,
    pub deployment: PathBuf,
    pub image: String,
    /// Keys of the anvil accounts not yet handed out.
    spare_keys: Vec<PrivateKeySigner>,
}

/// A `fog-miner run` process.
#[derive(Debug)]
pub struct Miner {
    pub address: Address,
    pub proc: Proc,
    pub config: PathBuf,
}

impl Miner {
    /// Waits until no job container of this miner (by its work directory) is left.
    pub async fn wait_for_no_containers(&self, within: Duration) -> anyhow::Result<()> {
        use std::collections::HashMap;
        let work = self
            .config
            .parent()
            .context("miner config has no directory")?
            .join("work");
        let work = work
            .to_str()
            .context("work directory is not UTF-8")?
            .to_owned();
        let docker = bollard::Docker::connect_with_local_defaults()?
            .negotiate_version()
            .await?;
        let deadline = Instant::now() + within;
        loop {
            let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&HashMap::from([("label", vec!["org.fog.job"])]))
                .build();
            let left = docker
                .list_containers(Some(options))
                .await?
                .into_iter()
                .filter(|c| {
                    c.mounts
                        .iter()
                        .flatten()
                        .any(|m| m.source.as_deref().is_some_and(|s| s.starts_with(&work)))
                })
                .count();
            if left == 0 {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{left} container(s) of this miner still there after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Fleet {
    /// Starts anvil, deploys, registers a hub (fee 5%) and starts `fog-hub`.
    /// `tweak` may add lines to the hub's TOML.
    pub async fn start(hub_extra: &str) -> anyhow::Result<Self> {
        Self::start_with(hub_extra, false).await
    }

    /// Like [`Fleet::start`]; with `keep_chain_state`, anvil keeps its state
    /// in the fleet's directory so `devnet.stop_anvil` and `resume_anvil` can take it down and back.
    pub async fn start_with(hub_extra: &str, keep_chain_state: bool) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("fog-fleet").tempdir()?;
        let state = keep_chain_state.then(|| dir.path().join("chain-state.json"));
        let devnet = Devnet::start_with_state(state).await?;
        let deployment = dir.path().join("deployment.json");
        devnet.deployment.save(&deployment)?;
        let (signer, signer_keystore) = keystore(&dir.path().join("hub"), "signer.json")?;
        let operator = devnet.keys[1].clone();
        let (hub, _) = devnet
            .register_hub(&operator, signer.address(), 500)
            .await?;
        // The signer sends the settlements: it needs gas money.
        devnet
            .send_eth(signer.address(), U256::from(10u64).pow(U256::from(19u64)))
            .await?;
        let port = free_port()?;
        let hub_url = format!("http://127.0.0.1:{port}");
        let hub_config = dir.path().join("hub/hub.toml");
        // Quick miner timeouts for tests, unless the caller sets its own.
        let miners = if hub_extra.contains("[miners]") {
            ""
        } else {
            "[miners]\nheartbeat_interval_ms = 300\ntimeout_ms = 2500\n"
        };
        std::fs::write(
            &hub_config,
            format!(
                "listen = \"127.0.0.1:{port}\"\n\
                 database_url = \"sqlite://{db}\"\n\
                 blob_dir = \"{blobs}\"\n\
                 deployment = \"{deployment}\"\n\
                 rpc_url = \"{rpc}\"\n\
                 hub = \"{hub}\"\n\
                 keystore = \"{keystore}\"\n\
                 {hub_extra}\n{miners}",
                db = dir.path().join("hub/hub.db").display(),
                blobs = dir.path().join("hub/blobs").display(),
                deployment = deployment.display(),
                rpc = devnet.anvil.endpoint(),
                keystore = signer_keystore.display(),
            ),
        )?;
        let spare_keys = devnet.keys[2..].to_vec();
        let hub_proc = Self::spawn_hub(&hub_config, dir.path())?;
        let mut fleet = Self {
            devnet,
            dir,
            hub,
            hub_url,
            hub_proc,
            hub_config,
            deployment,
            image: test_image_id()?,
            spare_keys,
        };
        fleet.wait_for_hub().await?;
        Ok(fleet)
    }

    fn spawn_hub(config: &Path, dir: &Path) -> anyhow::Result<Proc> {
        let n = std::fs::read_dir(dir)?.count();
        Proc::spawn(
            Command::new(crate::binary("fog-hub")?)
                .args(["serve", "--config"])
                .arg(config)
                .env("FOG_HUB_KEY_PASSWORD", PASSWORD)
                .env("FOG_LOG", "info,fog_hub=debug"),
            dir.join(format!("hub-{n}.log")),
        )
    }

    /// Waits until the hub answers /healthz.
    pub async fn wait_for_hub(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.hub_url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if !self.hub_proc.alive() {
                bail!("fog-hub exited:\n{}", self.hub_proc.log());
            }
            ensure!(
                Instant::now() < deadline,
                "fog-hub did not answer in 30 s:\n{}",
                self.hub_proc.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `n` miners are connected to the hub.
    pub async fn wait_for_miners(&self, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            let metrics = client
                .get(format!("{}/metrics", self.hub_url))
                .send()
                .await?
                .text()
                .await?;
            let connected = metrics
                .lines()
                .find_map(|l| l.strip_prefix("fog_hub_miners_connected "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if connected >= n {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{connected} of {n} miners connected after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9` the hub, then start it again on the same database.
    pub async fn restart_hub(&mut self, down_for: Duration) -> anyhow::Result<()> {
        self.hub_proc.kill();
        tokio::time::sleep(down_for).await;
        self.hub_proc = Self::spawn_hub(&self.hub_config, self.dir.path())?;
        self.wait_for_hub().await
    }

    /// Starts a miner offering `cpu_millicores` and 2 GiB, at a small price floor.
    pub fn start_miner(
        &self,
        name: &str,
        cpu_millicores: u64,
        extra: &str,
    ) -> anyhow::Result<Miner> {
        self.start_miner_with(name, cpu_millicores, extra, "")
    }

    /// Like [`Fleet::start_miner`], with `chain_extra` added to its `[chain]` section.
    pub fn start_miner_with(
        &self,
        name: &str,
        cpu_millicores: u64,
        extra: &str,
        chain_extra: &str,
    ) -> anyhow::Result<Miner> {
        let dir = self.dir.path().join(name);
        let (key, keystore) = keystore(&dir, "key.json")?;
        let config = dir.join("miner.toml");
        std::fs::write(
            &config,
            format!(
                "keystore = \"{keystore}\"\n\
                 hub_url = \"{hub_url}\"\n\
                 work_dir = \"{work}\"\n\
                 {extra}\n\
                 [offer]\ncpu_millicores = {cpu_millicores}\nmemory_bytes = {mem}\ndisk_bytes = {disk}\nregion = \"test\"\n\
                 [price]\nper_core_hour = \"0.001\"\n\
                 [chain]\ndeployment = \"{deployment}\"\nrpc_url = \"{rpc}\"\nhub = \"{hub}\"\n{chain_extra}\n",
                keystore = keystore.display(),
                hub_url = self.hub_url,
                work = dir.join("work").display(),
                mem = 2u64 << 30,
                disk = 4u64 << 30,
                deployment = self.deployment.display(),
                rpc = self.devnet.anvil.endpoint(),
                hub = self.hub,
            ),
        )?;
        let proc = Proc::spawn(
            Command::new(crate::binary("fog-miner")?)
                .args(["run", "--config"])
                .arg(&config)
                .env("FOG_MINER_KEY_PASSWORD", PASSWORD)
                .env("FOG_LOG", "info"),
            dir.join("miner.log"),
        )?;
        Ok(Miner {
            address: key.address(),
            proc,
            config,
        })
    }

    /// Starts a killed miner again with the same key, configuration and work directory.
    pub fn restart_miner(&self, miner: &mut Miner) -> anyhow::Result<()> {
        miner.proc.kill();
        let dir = miner
            .config
            .parent()
            .context("miner config has no directory")?;
        let n = std::fs::read_dir(dir)?.count();
        miner.proc = Proc::spawn(
            Command::new(crate::binary("fog-miner")?)
                .args(["run", "--config"])
                .arg(&miner.config)
                .env("FOG_MINER_KEY_PASSWORD", PASSWORD)
                .env("FOG_LOG", "info"),
            dir.join(format!("miner-{n}.log")),
        )?;
        Ok(())
    }

    /// A funded buyer with its own HTTP client.
    pub async fn buyer(&mut self) -> anyhow::Result<Buyer> {
        let key = self.spare_keys.pop().context("out of anvil accounts")?;
        self.devnet
            .fund(
                key.address(),
                U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18u64)),
            )
            .await?;
        Ok(Buyer {
            key,
            http: reqwest::Client::new(),
            url: self.hub_url.clone(),
            token: None,
        })
    }

    /// A spec running `script` in the busybox image.
    pub fn spec(&self, script: &str, replicas: u16) -> JobSpec {
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
            maxDurationSecs: 120,
            network: 0,
            placement: Placement::default(),
            replicas,
            maxPayment: U256::from(10u64).pow(U256::from(18u64)),
            deadline: unix_now() + 3_600,
        }
    }

    /// The hub's bond in the batch contract, put up by its operator.
    pub async fn bond_hub(&self, amount: U256) -> anyhow::Result<()> {
        use fog_protocol::contracts::batch_settlement::BatchSettlement;
        use fog_protocol::contracts::fog_token::FogToken;
        let d = &self.devnet.deployment;
        let operator = self.devnet.keys[1].clone();
        self.devnet.fund(operator.address(), amount).await?;
        let provider = self.devnet.provider(&operator);
        let token = FogToken::new(d.token, &provider);
        crate::devnet::mined(
            token
                .approve(d.batch, amount)
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        let batch = BatchSettlement::new(d.batch, &provider);
        crate::devnet::mined(
            batch
                .deposit(self.hub, amount)
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        Ok(())
    }

    /// Opens the escrow for `spec` as `buyer`; returns the job id.
    pub async fn open_escrow(&self, buyer: &Buyer, spec: &JobSpec) -> anyhow::Result<B256> {
        let mut salt = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut salt);
        let terms = JobTerms {
            hub: self.hub,
            spec_hash: spec.spec_hash(),
            replicas: spec.replicas,
            max_payment: spec.maxPayment,
            deadline: spec.deadline,
            max_duration: spec.maxDurationSecs,
        };
        let (job_id, _) = self
            .devnet
            .open_job(&buyer.key, B256::from(salt), &terms)
            .await?;
        Ok(job_id)
    }
}

/// A typical small job (benchmarks): one core, 512 MiB, busybox `true`.
pub fn bench_spec() -> JobSpec {
    JobSpec {
        image: format!("sha256:{}", "ab".repeat(32)),
        command: vec!["true".into()],
        env: vec![],
        inputs: vec![],
        outputPath: "/fog/out".into(),
        resources: Resources {
            cpuMillicores: 1_000,
            memoryBytes: 512 << 20,
            diskBytes: 1 << 30,
            gpuCount: 0,
        },
        maxDurationSecs: 600,
        network: 0,
        placement: Placement::default(),
        replicas: 1,
        maxPayment: U256::from(10u64).pow(U256::from(18u64)),
        deadline: unix_now() + 3_600,
    }
}

pub use fog_protocol::clock::unix_now;

/// A buyer talking to the hub's API.
#[derive(Debug)]
pub struct Buyer {
    pub key: PrivateKeySigner,
    pub http: reqwest::Client,
    pub url: String,
    pub token: Option<String>,
}

/// An HTTP answer: status and JSON body.
pub type Answer = (reqwest::StatusCode, Value);

impl Buyer {
    pub fn address(&self) -> Address {
        self.key.address()
    }

    async fn answer(response: reqwest::Response) -> anyhow::Result<Answer> {
        let status = response.status();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    /// Logs in (challenge, personal signature, token).
    pub async fn login(&mut self) -> anyhow::Result<()> {
        let (_, challenge) = self
            .post("/v1/auth/challenge", &json!({ "address": self.address() }))
            .await?;
        let message = challenge["message"]
            .as_str()
            .context("no challenge message")?;
        let signature = self.key.sign_message_sync(message.as_bytes())?;
        let (status, body) = self
            .post(
                "/v1/auth/login",
                &json!({ "address": self.address(), "nonce": challenge["nonce"], "signature": signature.to_string() }),
            )
            .await?;
        ensure!(status.is_success(), "login: {status} {body}");
        self.token = body["token"].as_str().map(str::to_owned);
        Ok(())
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        Self::answer(req.send().await?).await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        Self::answer(req.send().await?).await
    }

    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        Ok((r.status(), r.bytes().await?.to_vec()))
    }

    /// Uploads an input; returns the spec's blob entry for it.
    pub async fn upload(&self, path_in_job: &str, bytes: &[u8]) -> anyhow::Result<InputBlob> {
        let hash = sha256(bytes);
        let mut req = self
            .http
            .put(format!("{}/v1/blobs/{hash}", self.url))
            .body(bytes.to_vec());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let (status, body) = Self::answer(req.send().await?).await?;
        ensure!(status.is_success(), "upload: {status} {body}");
        Ok(InputBlob {
            contentHash: hash,
            size: bytes.len() as u64,
            path: path_in_job.into(),
        })
    }

    /// `PUT path` with a raw body and extra headers; the answer as it comes.
    pub async fn put_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Value)> {
        let mut req = self.http.put(format!("{}{path}", self.url)).body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let response = req.send().await?;
        let headers = response.headers().clone();
        let (status, body) = Self::answer(response).await?;
        Ok((status, headers, body))
    }

    /// Signs and submits a spec for an open escrow.
    pub async fn submit(
        &self,
        job_id: B256,
        spec: &JobSpec,
        domain: &fog_protocol::Eip712Domain,
    ) -> anyhow::Result<Answer> {
        let signed = SignedJobSpec::sign(spec.clone(), &self.key, domain)?;
        self.post(
            "/v1/jobs",
            &json!({ "jobId": job_id, "spec": signed.payload, "signature": signed.signature.to_string() }),
        )
        .await
    }

    /// Polls the job until its settlement on chain is final; returns the status.
    pub async fn wait_settled(&self, job_id: B256, within: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.get(&format!("/v1/jobs/{job_id}")).await?;
            ensure!(status.is_success(), "status: {status} {body}");
            if matches!(
                body["settlement"]["state"].as_str(),
                Some("settled" | "failed" | "refunded")
            ) {
                return Ok(body);
            }
            ensure!(
                Instant::now() < deadline,
                "job {job_id} not settled in {within:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls the job until it reaches a final state (or `within` passes).
    pub async fn wait(&self, job_id: B256, within: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.get(&format!("/v1/jobs/{job_id}")).await?;
            ensure!(status.is_success(), "status: {status} {body}");
            if matches!(
                body["state"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                return Ok(body);
            }
            ensure!(
                Instant::now() < deadline,
                "job {job_id} not done in {within:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
