//! Deploys and wires the whole contract system on any JSON-RPC chain, and
//! describes the result as a [`Deployment`] (written to JSON for the hub,
//! miners and CLI to read).
//!
//! Order: token → timelock → governor (proposer and canceller on the
//! timelock; the deployer renounces its admin role) → funds timelock (its
//! only proposer is the timelock: a vote schedules fund-module upgrades
//! there, and they wait its longer delay) → wallet beacon owned by the funds
//! timelock → treasury proxy → registry proxy → treasury bound to the
//! registry → escrow proxy → registry bound to the escrow. The registry's
//! initialiser refuses an unbonding period that does not outlast a whole vote
//! plus its margin; the treasury's refuses a funds delay that does not outlast
//! its freeze. The wiring is read back and checked before the deployment is
//! returned. docs/governance.md gives every parameter and its reason.

use std::path::Path;

use alloy::primitives::aliases::U48;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolCall;
use serde::{Deserialize, Serialize};

use crate::contracts::batch_settlement::{BatchSettlement, IBatchSettlement};
use crate::contracts::batch_verifier::BatchVerifier;
use crate::contracts::{
    beacon::UpgradeableBeacon, dao_treasury::DaoTreasury, fog_governor::FogGovernor,
    fog_token::FogToken, hub_registry::HubRegistry, hub_wallet::HubWallet, job_escrow::JobEscrow,
    proxy::ERC1967Proxy, timelock::TimelockController,
};

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("invalid deployment parameter: {0}")]
    InvalidParams(String),
    #[error("{step}: {source}")]
    Contract {
        step: &'static str,
        #[source]
        source: Box<alloy::contract::Error>,
    },
    #[error("{step}: waiting for the transaction: {source}")]
    Pending {
        step: &'static str,
        #[source]
        source: alloy::providers::PendingTransactionError,
    },
    #[error("{step}: transaction {tx} reverted")]
    Reverted { step: &'static str, tx: B256 },
    #[error("reading the chain id: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    #[error("after deployment, {0} is not wired as expected")]
    Miswired(&'static str),
    #[error("deployment file {path}: {reason}")]
    File { path: String, reason: String },
}

/// Settings of a deployment. Durations are seconds (the token's clock is the timestamp).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployParams {
    /// Receives the whole token supply.
    pub token_holder: Address,
    pub token_supply: U256,
    pub voting_delay: u64,
    pub voting_period: u32,
    /// Votes needed to propose; never zero.
    pub proposal_threshold: U256,
    /// Percent of the supply that must take part for a vote to count.
    pub quorum_percent: u8,
    pub timelock_delay: u64,
    /// Delay of the funds timelock, through which alone the escrow, registry,
    /// treasury and wallet beacon upgrade; must exceed the freeze period.
    pub funds_timelock_delay: u64,
    pub min_deposit: U256,
    /// Must exceed voting delay + voting period + timelock delay + 1 hour.
    pub unbonding_period: u64,
    /// How long each expropriated deposit stays frozen in the treasury.
    pub freeze_period: u64,
    /// Highest hub commission, in basis points.
    pub max_fee_bps: u16,
    /// Most open escrow a hub may hold, in basis points of its deposit (<= 10,000).
    pub max_exposure_bps: u16,
    /// Timing and economics of the batched settlement path (docs/settlement.md).
    #[serde(default = "BatchParams::devnet")]
    pub batch: BatchParams,
}

/// `BatchSettlement`'s parameters, in seconds; the contract refuses sets that
/// could strand money (see its `InvalidParams` rules).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchParams {
    pub challenge_window: u32,
    pub response_window: u32,
    pub claim_period: u32,
    pub proof_window: u32,
    pub auth_horizon: u32,
    pub withdrawal_delay: u32,
    /// A successful challenger's reward, in basis points of the contested amount.
    pub reward_bps: u16,
    /// What a challenger puts up; the hub gets it for an answer.
    pub challenge_stake: U256,
}

impl BatchParams {
    /// Minutes instead of hours: a devnet's clock is moved by tests and demos.
    pub fn devnet() -> Self {
        let unit = U256::from(10u64).pow(U256::from(18u64));
        Self {
            challenge_window: 120,
            response_window: 120,
            claim_period: 3_600,
            proof_window: 600,
            auth_horizon: 86_400,
            withdrawal_delay: 86_400 + 3_600 + 600,
            reward_bps: 1_000,
            challenge_stake: U256::from(10u64) * unit,
        }
    }
}

impl DeployParams {
    /// Short periods for a local devnet whose clock the demo and tests move.
    pub fn devnet(token_holder: Address) -> Self {
        let unit = U256::from(10u64).pow(U256::from(18u64));
        Self {
            token_holder,
            token_supply: U256::from(1_000_000_000u64) * unit,
            voting_delay: 60,
            voting_period: 300,
            proposal_threshold: U256::from(1_000u64) * unit,
            quorum_percent: 4,
            timelock_delay: 120,
            funds_timelock_delay: 90_000,
            min_deposit: U256::from(10_000u64) * unit,
            unbonding_period: 7_200,
            freeze_period: 86_400,
            max_fee_bps: 2_000,
            max_exposure_bps: 10_000,
            batch: BatchParams::devnet(),
        }
    }
}

/// Where everything is, on which chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    pub chain_id: u64,
    pub token: Address,
    pub timelock: Address,
    /// The longer timelock that alone upgrades the fund-holding modules.
    pub funds_timelock: Address,
    pub governor: Address,
    pub wallet_beacon: Address,
    pub registry: Address,
    pub treasury: Address,
    /// The JobEscrow proxy: the EIP-712 verifying contract.
    pub escrow: Address,
    /// The BatchSettlement proxy (zero in deployments made before it existed).
    #[serde(default)]
    pub batch: Address,
    /// Block of the last deployment transaction.
    pub block: u64,
    pub params: DeployParams,
}

impl Deployment {
    /// The EIP-712 domain of this deployment.
    pub fn domain(&self) -> crate::Eip712Domain {
        crate::fog_domain(self.chain_id, self.escrow)
    }

    /// The EIP-712 domain job authorisations of the batched path are signed under.
    pub fn batch_domain(&self) -> crate::Eip712Domain {
        crate::batch::batch_domain(self.chain_id, self.batch)
    }

    /// Reads a deployment file.
    pub fn load(path: &Path) -> Result<Self, DeployError> {
        let file_err = |reason: String| DeployError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| file_err(e.to_string()))
    }

    /// Writes a deployment file (atomically: a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), DeployError> {
        let file_err = |reason: String| DeployError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| file_err(e.to_string()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").map_err(|e| file_err(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| file_err(e.to_string()))
    }
}

async fn confirm<P: Provider>(
    step: &'static str,
    call: alloy::contract::CallBuilder<&P, std::marker::PhantomData<impl SolCall>>,
) -> Result<TransactionReceipt, DeployError> {
    let pending = call.send().await.map_err(|source| DeployError::Contract {
        step,
        source: Box::new(source),
    })?;
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|source| DeployError::Pending { step, source })?;
    if receipt.status() {
        Ok(receipt)
    } else {
        Err(DeployError::Reverted {
            step,
            tx: receipt.transaction_hash,
        })
    }
}

fn contract_err(step: &'static str) -> impl Fn(alloy::contract::Error) -> DeployError {
    move |source| DeployError::Contract {
        step,
        source: Box::new(source),
    }
}

/// Deploys everything from `deployer` (the provider's signing account).
pub async fn deploy<P: Provider>(
    provider: &P,
    deployer: Address,
    params: &DeployParams,
) -> Result<Deployment, DeployError> {
    let chain_id = provider.get_chain_id().await?;

    let token = FogToken::deploy(provider, params.token_holder, params.token_supply)
        .await
        .map_err(contract_err("deploy FogToken"))?;
    let timelock = TimelockController::deploy(
        provider,
        U256::from(params.timelock_delay),
        vec![],
        vec![Address::ZERO], // anyone may execute a proposal once its delay has passed
        deployer,
    )
    .await
    .map_err(contract_err("deploy TimelockController"))?;
    let governor = FogGovernor::deploy(
        provider,
        *token.address(),
        *timelock.address(),
        U48::from(params.voting_delay),
        params.voting_period,
        params.proposal_threshold,
        U256::from(params.quorum_percent),
    )
    .await
    .map_err(contract_err("deploy FogGovernor"))?;
    let proposer = timelock
        .PROPOSER_ROLE()
        .call()
        .await
        .map_err(contract_err("read PROPOSER_ROLE"))?;
    let canceller = timelock
        .CANCELLER_ROLE()
        .call()
        .await
        .map_err(contract_err("read CANCELLER_ROLE"))?;
    let admin = timelock
        .DEFAULT_ADMIN_ROLE()
        .call()
        .await
        .map_err(contract_err("read DEFAULT_ADMIN_ROLE"))?;
    confirm(
        "grant proposer role to the governor",
        timelock.grantRole(proposer, *governor.address()),
    )
    .await?;
    confirm(
        "grant canceller role to the governor",
        timelock.grantRole(canceller, *governor.address()),
    )
    .await?;
    confirm(
        "renounce the deployer's timelock admin role",
        timelock.renounceRole(admin, deployer),
    )
    .await?;

    // Fund-holding modules upgrade only through this one: a passed vote has the
    // timelock schedule the upgrade here, and it waits out the longer delay.
    let funds_timelock = TimelockController::deploy(
        provider,
        U256::from(params.funds_timelock_delay),
        vec![*timelock.address()],
        vec![Address::ZERO],
        Address::ZERO,
    )
    .await
    .map_err(contract_err("deploy the funds TimelockController"))?;

    let wallet_impl = HubWallet::deploy(provider)
        .await
        .map_err(contract_err("deploy HubWallet"))?;
    let beacon =
        UpgradeableBeacon::deploy(provider, *wallet_impl.address(), *funds_timelock.address())
            .await
            .map_err(contract_err("deploy UpgradeableBeacon"))?;

    let treasury_impl = DaoTreasury::deploy(provider)
        .await
        .map_err(contract_err("deploy DaoTreasury"))?;
    let treasury_init = DaoTreasury::initializeCall {
        token_: *token.address(),
        timelock_: *timelock.address(),
        fundsTimelock_: *funds_timelock.address(),
        freezePeriod_: params.freeze_period,
    }
    .abi_encode();
    let treasury_proxy =
        ERC1967Proxy::deploy(provider, *treasury_impl.address(), treasury_init.into())
            .await
            .map_err(contract_err("deploy DaoTreasury proxy"))?;
    let treasury = DaoTreasury::new(*treasury_proxy.address(), provider);

    let registry_impl = HubRegistry::deploy(provider)
        .await
        .map_err(contract_err("deploy HubRegistry"))?;
    let registry_init = HubRegistry::initializeCall {
        config_: crate::contracts::hub_registry::IHubRegistry::Config {
            token: *token.address(),
            walletBeacon: *beacon.address(),
            timelock: *timelock.address(),
            fundsTimelock: *funds_timelock.address(),
            governor: *governor.address(),
            treasury: *treasury.address(),
            minDeposit: params.min_deposit,
            unbondingPeriod: params.unbonding_period,
            maxFeeBps: params.max_fee_bps,
            maxExposureBps: params.max_exposure_bps,
        },
    }
    .abi_encode();
    let registry_proxy =
        ERC1967Proxy::deploy(provider, *registry_impl.address(), registry_init.into())
            .await
            .map_err(contract_err("deploy HubRegistry proxy"))?;
    let registry = HubRegistry::new(*registry_proxy.address(), provider);
    confirm(
        "bind the treasury to the registry",
        treasury.bindRegistry(*registry.address()),
    )
    .await?;

    let escrow_impl = JobEscrow::deploy(provider)
        .await
        .map_err(contract_err("deploy JobEscrow"))?;
    let escrow_init = JobEscrow::initializeCall {
        token_: *token.address(),
        registry_: *registry.address(),
        fundsTimelock_: *funds_timelock.address(),
    }
    .abi_encode();
    let escrow_proxy = ERC1967Proxy::deploy(provider, *escrow_impl.address(), escrow_init.into())
        .await
        .map_err(contract_err("deploy JobEscrow proxy"))?;
    let escrow = JobEscrow::new(*escrow_proxy.address(), provider);
    confirm(
        "bind the registry to the escrow",
        registry.bindEscrow(*escrow.address()),
    )
    .await?;

    let challenge_stake = alloy::primitives::aliases::U96::checked_from_limbs_slice(
        params.batch.challenge_stake.as_limbs(),
    )
    .ok_or_else(|| {
        DeployError::InvalidParams(format!(
            "batch.challengeStake {} does not fit in 96 bits",
            params.batch.challenge_stake
        ))
    })?;
    let verifier = BatchVerifier::deploy(provider)
        .await
        .map_err(contract_err("deploy BatchVerifier"))?;
    let batch_impl = BatchSettlement::deploy(provider)
        .await
        .map_err(contract_err("deploy BatchSettlement"))?;
    let b = &params.batch;
    let batch_init = BatchSettlement::initializeCall {
        token_: *token.address(),
        registry_: *registry.address(),
        escrow_: *escrow.address(),
        verifier_: *verifier.address(),
        fundsTimelock_: *funds_timelock.address(),
        params_: IBatchSettlement::Params {
            challengeWindow: b.challenge_window,
            responseWindow: b.response_window,
            claimPeriod: b.claim_period,
            proofWindow: b.proof_window,
            authHorizon: b.auth_horizon,
            withdrawalDelay: b.withdrawal_delay,
            rewardBps: b.reward_bps,
            challengeStake: challenge_stake,
        },
    }
    .abi_encode();
    let batch_proxy = ERC1967Proxy::deploy(provider, *batch_impl.address(), batch_init.into())
        .await
        .map_err(contract_err("deploy BatchSettlement proxy"))?;
    let batch = BatchSettlement::new(*batch_proxy.address(), provider);

    // Read the wiring back: a deployment that does not hold together is an error, not a file.
    let batch_wiring = batch
        .wiring()
        .call()
        .await
        .map_err(contract_err("read batch settlement wiring"))?;
    if batch_wiring.escrow != *escrow.address()
        || batch_wiring.fundsTimelock != *funds_timelock.address()
    {
        return Err(DeployError::Miswired("BatchSettlement"));
    }
    let wiring = escrow
        .wiring()
        .call()
        .await
        .map_err(contract_err("read escrow wiring"))?;
    if wiring.token != *token.address()
        || wiring.registry != *registry.address()
        || wiring.fundsTimelock != *funds_timelock.address()
    {
        return Err(DeployError::Miswired("JobEscrow"));
    }
    let bound = registry
        .escrow()
        .call()
        .await
        .map_err(contract_err("read the registry's escrow"))?;
    if bound != *escrow.address() {
        return Err(DeployError::Miswired("HubRegistry (escrow not bound)"));
    }
    let treasury_wiring = treasury
        .wiring()
        .call()
        .await
        .map_err(contract_err("read treasury wiring"))?;
    if treasury_wiring.registry != *registry.address()
        || treasury_wiring.timelock != *timelock.address()
        || treasury_wiring.fundsTimelock != *funds_timelock.address()
    {
        return Err(DeployError::Miswired("DaoTreasury"));
    }
    let still_admin = timelock
        .hasRole(admin, deployer)
        .call()
        .await
        .map_err(contract_err("read timelock roles"))?;
    if still_admin {
        return Err(DeployError::Miswired(
            "TimelockController (deployer still admin)",
        ));
    }

    let block = provider.get_block_number().await?;
    Ok(Deployment {
        chain_id,
        token: *token.address(),
        timelock: *timelock.address(),
        funds_timelock: *funds_timelock.address(),
        governor: *governor.address(),
        wallet_beacon: *beacon.address(),
        registry: *registry.address(),
        treasury: *treasury.address(),
        escrow: *escrow.address(),
        batch: *batch.address(),
        block,
        params: params.clone(),
    })
}
