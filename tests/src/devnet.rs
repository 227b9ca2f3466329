//! A local chain for cross-process tests and benchmarks: anvil (the npm-installed
//! native binary) with the whole contract system deployed by fog-protocol's deployer.

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, ensure};
use fog_protocol::contracts::{
    fog_token::FogToken, hub_registry::HubRegistry, job_escrow::JobEscrow,
};
use fog_protocol::deploy::{DeployParams, Deployment, deploy};

/// Path of the anvil binary installed by `make setup`.
pub fn anvil_path() -> std::path::PathBuf {
    crate::repo_root().join("contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

/// What a buyer locks a job under.
#[derive(Clone, Copy, Debug)]
pub struct JobTerms {
    pub hub: Address,
    pub spec_hash: B256,
    pub replicas: u16,
    pub max_payment: U256,
    pub deadline: u64,
    /// The spec's maximum duration: the deadline must leave it and the settlement window.
    pub max_duration: u64,
}

/// A running anvil with Fog deployed; anvil stops when this is dropped.
#[derive(Debug)]
pub struct Devnet {
    pub anvil: AnvilInstance,
    pub deployment: Deployment,
    /// anvil's funded development keys; key 0 deployed and holds the supply.
    pub keys: Vec<PrivateKeySigner>,
    /// Where anvil keeps its state across restarts (`--state`), if it does.
    state: Option<std::path::PathBuf>,
}

fn spawn_anvil(
    port: Option<u16>,
    state: Option<&std::path::Path>,
) -> anyhow::Result<AnvilInstance> {
    let path = anvil_path();
    ensure!(
        path.is_file(),
        "anvil not found at {}: run `make setup`",
        path.display()
    );
    let mut anvil = Anvil::at(path);
    if let Some(port) = port {
        anvil = anvil.port(port);
    }
    if let Some(state) = state {
        anvil = anvil.arg("--state").arg(state);
    }
    anvil.try_spawn().context("starting anvil")
}

impl Devnet {
    /// Starts anvil and deploys the contracts with devnet parameters.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_state(None).await
    }

    /// Like [`Devnet::start`]; with `state`, anvil writes its state there when
    /// it stops and reads it back when [`Devnet::resume_anvil`] starts it again.
    pub async fn start_with_state(state: Option<std::path::PathBuf>) -> anyhow::Result<Self> {
        let anvil = spawn_anvil(None, state.as_deref())?;
        let keys: Vec<PrivateKeySigner> = anvil
            .keys()
            .iter()
            .cloned()
            .map(PrivateKeySigner::from)
            .collect();
        let deployer = keys[0].clone();
        let provider = provider_for(&anvil, &deployer);
        let deployment = deploy(
            &provider,
            deployer.address(),
            &DeployParams::devnet(deployer.address()),
        )
        .await
        .context("deploying the contracts")?;
        Ok(Self {
            anvil,
            deployment,
            keys,
            state,
        })
    }

    /// Stops anvil cleanly (SIGTERM: it writes its `--state`); the chain is
    /// down until [`Devnet::resume_anvil`].
    pub fn stop_anvil(&mut self) -> anyhow::Result<()> {
        let state = self
            .state
            .as_ref()
            .context("this devnet keeps no state: start it with start_with_state")?;
        let pid = self.anvil.child().id();
        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill")?;
        ensure!(stopped.success(), "kill -TERM {pid} failed");
        self.anvil
            .child_mut()
            .wait()
            .context("waiting for anvil to stop")?;
        ensure!(
            state.is_file(),
            "anvil wrote no state to {}",
            state.display()
        );
        Ok(())
    }

    /// Starts anvil again on the same port from the state it wrote when stopped.
    pub fn resume_anvil(&mut self) -> anyhow::Result<()> {
        let state = self
            .state
            .clone()
            .context("this devnet keeps no state: start it with start_with_state")?;
        self.anvil = spawn_anvil(Some(self.anvil.port()), Some(&state))?;
        Ok(())
    }

    /// Sends a JSON-RPC request to anvil (e.g. `evm_setAutomine`, `evm_mine`).
    pub async fn rpc(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let provider = self.provider(self.treasury_key());
        Ok(provider.raw_request(method.into(), params).await?)
    }

    /// A provider that signs with `key`.
    pub fn provider(&self, key: &PrivateKeySigner) -> DynProvider {
        provider_for(&self.anvil, key)
    }

    /// The account holding the token supply.
    pub fn treasury_key(&self) -> &PrivateKeySigner {
        &self.keys[0]
    }

    /// Sends `amount` tokens from the supply holder to `to`.
    pub async fn fund(&self, to: Address, amount: U256) -> anyhow::Result<()> {
        let token = FogToken::new(self.deployment.token, self.provider(self.treasury_key()));
        mined(
            token
                .transfer(to, amount)
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        Ok(())
    }

    /// Registers a hub operated by `operator`, signing assignments with `signer`.
    pub async fn register_hub(
        &self,
        operator: &PrivateKeySigner,
        signer: Address,
        fee_bps: u16,
    ) -> anyhow::Result<(Address, TransactionReceipt)> {
        let deposit = self.deployment.params.min_deposit;
        self.fund(operator.address(), deposit).await?;
        let provider = self.provider(operator);
        let token = FogToken::new(self.deployment.token, &provider);
        mined(
            token
                .approve(self.deployment.registry, deposit)
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        let registry = HubRegistry::new(self.deployment.registry, &provider);
        let receipt = mined(
            registry
                .register(signer, fee_bps, "http://127.0.0.1:8040".into(), deposit)
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        let hub = receipt
            .decoded_log::<HubRegistry::HubRegistered>()
            .context("no HubRegistered event")?
            .hub;
        Ok((hub, receipt))
    }

    /// Opens a job as `buyer` (approve + open); returns the job id and the open transaction's receipt.
    pub async fn open_job(
        &self,
        buyer: &PrivateKeySigner,
        salt: B256,
        terms: &JobTerms,
    ) -> anyhow::Result<(B256, TransactionReceipt)> {
        let JobTerms {
            hub,
            spec_hash,
            replicas,
            max_payment,
            deadline,
            max_duration,
        } = *terms;
        let provider = self.provider(buyer);
        let token = FogToken::new(self.deployment.token, &provider);
        mined(
            token
                .approve(self.deployment.escrow, max_payment)
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        let escrow = JobEscrow::new(self.deployment.escrow, &provider);
        let receipt = mined(
            escrow
                .open(
                    salt,
                    hub,
                    spec_hash,
                    deadline,
                    replicas,
                    max_payment,
                    max_duration,
                )
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        let job_id = escrow.jobIdFor(buyer.address(), salt).call().await?;
        Ok((job_id, receipt))
    }

    /// Sends `wei` of the chain's own coin (gas money) from the supply holder to `to`.
    pub async fn send_eth(&self, to: Address, wei: U256) -> anyhow::Result<()> {
        use alloy::network::TransactionBuilder;
        let provider = self.provider(self.treasury_key());
        let tx = alloy::rpc::types::TransactionRequest::default()
            .with_to(to)
            .with_value(wei);
        mined(provider.send_transaction(tx).await?.get_receipt().await?)?;
        Ok(())
    }

    /// Token balance of `who`.
    pub async fn balance(&self, who: Address) -> anyhow::Result<U256> {
        let token = FogToken::new(self.deployment.token, self.provider(self.treasury_key()));
        Ok(token.balanceOf(who).call().await?)
    }

    /// Moves the chain's clock `seconds` forward and mines a block.
    pub async fn advance(&self, seconds: u64) -> anyhow::Result<()> {
        let provider = self.provider(self.treasury_key());
        let _: serde_json::Value = provider
            .raw_request("evm_increaseTime".into(), (seconds,))
            .await?;
        let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await?;
        Ok(())
    }

    /// The chain's latest block timestamp.
    pub async fn now(&self) -> anyhow::Result<u64> {
        let provider = self.provider(self.treasury_key());
        let block = provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await?
            .context("no latest block")?;
        Ok(block.header.timestamp)
    }
}

fn provider_for(anvil: &AnvilInstance, key: &PrivateKeySigner) -> DynProvider {
    // Several providers may sign for one key: ask the chain for each nonce rather than cache it.
    ProviderBuilder::new()
        .with_simple_nonce_management()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(anvil.endpoint_url())
        .erased()
}

/// Fails unless the transaction succeeded.
pub fn mined(receipt: TransactionReceipt) -> anyhow::Result<TransactionReceipt> {
    ensure!(
        receipt.status(),
        "transaction {} reverted",
        receipt.transaction_hash
    );
    Ok(receipt)
}
