//! Chain-side commands for hub operators and everyone holding the token:
//! `fog hub register|status|withdraw|exit`, `fog token balance|transfer`,
//! `fog account` (the batched settlement path's account), and on a devnet
//! `fog devnet faucet`.
//!
//! Each reads the chain first where a refusal can be explained (state,
//! balances), then simulates the call, so a refusal is reported with the
//! contract's own error, decoded (`FeeTooHigh { feeBps: 5000, maxFeeBps:
//! 2000 }`), before any gas is spent.

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use fog_protocol::contracts::HubState;
use fog_protocol::contracts::batch_settlement::BatchSettlement;
use fog_protocol::contracts::fog_token::FogToken;
use fog_protocol::contracts::hub_registry::HubRegistry;
use fog_protocol::contracts::hub_wallet::HubWallet;
use fog_protocol::deploy::Deployment;
use fog_protocol::{Address, B256, PrivateKeySigner, U256};
use serde::Serialize;

/// Why a chain command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{what}: the contract refuses: {reason}")]
    Refused { what: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the chain: {0}")]
    Chain(String),
}

pub(crate) fn chain(e: impl std::fmt::Display) -> OpsError {
    OpsError::Chain(e.to_string())
}

/// The contract's own error, decoded against the error sets of every Fog
/// contract (`fog_protocol::contracts::refusal`), else the raw text.
pub(crate) fn refusal(what: &str, e: &alloy::contract::Error) -> OpsError {
    OpsError::Refused {
        what: what.to_owned(),
        reason: fog_protocol::contracts::refusal(e).unwrap_or_else(|| e.to_string()),
    }
}

/// Simulates the call (a refusal comes back decoded, before gas is spent),
/// sends it, waits for it, and insists that it succeeded.
pub(crate) async fn transact<P: Provider, C: alloy::sol_types::SolCall>(
    what: &str,
    call: alloy::contract::SolCallBuilder<P, C>,
) -> Result<TransactionReceipt, OpsError> {
    call.call().await.map_err(|e| refusal(what, &e))?;
    let receipt = call
        .send()
        .await
        .map_err(|e| refusal(what, &e))?
        .get_receipt()
        .await
        .map_err(chain)?;
    if !receipt.status() {
        return Err(OpsError::Chain(format!(
            "{what} reverted ({})",
            receipt.transaction_hash
        )));
    }
    Ok(receipt)
}

/// The chain's latest block time: the clock deadlines, votes and timelocks run on.
pub async fn chain_time(provider: &impl Provider) -> Result<u64, OpsError> {
    Ok(provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(chain)?
        .ok_or_else(|| OpsError::Chain("no latest block".into()))?
        .header
        .timestamp)
}

/// An amount of base units as whole tokens for people: `10000 FOG`,
/// `0.000793650793650794 FOG` (18 decimals, trailing zeros dropped).
pub fn fog(amount: U256) -> String {
    let text =
        alloy::primitives::utils::format_units(amount, 18).unwrap_or_else(|_| amount.to_string());
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text.as_str()
    };
    format!("{text} FOG")
}

/// A provider that signs with `key`.
pub fn signing_provider(rpc_url: &str, key: PrivateKeySigner) -> Result<DynProvider, OpsError> {
    let url = rpc_url
        .parse()
        .map_err(|e| OpsError::Invalid(format!("--chain-rpc {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(url)
        .erased())
}

/// A provider that only reads: no key.
pub fn read_provider(rpc_url: &str) -> Result<DynProvider, OpsError> {
    let url = rpc_url
        .parse()
        .map_err(|e| OpsError::Invalid(format!("--chain-rpc {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new().connect_http(url).erased())
}

pub async fn token_balance(
    provider: &DynProvider,
    d: &Deployment,
    who: Address,
) -> Result<U256, OpsError> {
    FogToken::new(d.token, provider)
        .balanceOf(who)
        .call()
        .await
        .map_err(chain)
}

pub async fn token_transfer(
    provider: &DynProvider,
    d: &Deployment,
    to: Address,
    amount: U256,
) -> Result<B256, OpsError> {
    let token = FogToken::new(d.token, provider);
    let receipt: TransactionReceipt = transact("transfer", token.transfer(to, amount)).await?;
    Ok(receipt.transaction_hash)
}

/// Registers a hub operated by the provider's key: approves the deposit,
/// registers, and returns the new hub's address (its HubWallet).
pub async fn hub_register(
    provider: &DynProvider,
    d: &Deployment,
    operator: Address,
    signer: Address,
    fee_bps: u16,
    endpoint: &str,
    deposit: U256,
) -> Result<(Address, B256), OpsError> {
    let token = FogToken::new(d.token, provider);
    let balance = token.balanceOf(operator).call().await.map_err(chain)?;
    if balance < deposit {
        return Err(OpsError::Invalid(format!(
            "{operator} holds {}, less than the {} deposit: get tokens first \
             (`fog token transfer` from a holder; on a devnet `fog devnet faucet`)",
            fog(balance),
            fog(deposit)
        )));
    }
    transact("approving the deposit", token.approve(d.registry, deposit)).await?;
    let registry = HubRegistry::new(d.registry, provider);
    let receipt: TransactionReceipt = transact(
        "register",
        registry.register(signer, fee_bps, endpoint.to_owned(), deposit),
    )
    .await?;
    let hub = receipt
        .decoded_log::<HubRegistry::HubRegistered>()
        .ok_or_else(|| OpsError::Chain("no HubRegistered event".into()))?
        .hub;
    Ok((hub, receipt.transaction_hash))
}

/// A hub as the chain holds it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubStatus {
    pub hub: Address,
    pub state: HubState,
    pub operator: Address,
    pub signer: Address,
    pub fee_bps: u16,
    pub endpoint: String,
    /// Unix time the deposit unlocks, while exiting (no sooner than an
    /// unbonding period after its last job closed).
    pub exit_at: u64,
    pub deposit: U256,
    pub earnings: U256,
    /// Jobs opened with the hub and not yet settled or refunded.
    pub open_jobs: u32,
    /// Tokens locked in those jobs.
    pub open_escrow: U256,
    /// The most it may hold in open jobs (a share of its deposit).
    pub exposure_cap: U256,
    /// When its last job closed (its registration before any).
    pub last_closed_at: u64,
}

pub async fn hub_status(
    provider: &DynProvider,
    d: &Deployment,
    hub: Address,
) -> Result<HubStatus, OpsError> {
    let registry = HubRegistry::new(d.registry, provider);
    let info = registry
        .hubInfo(hub)
        .call()
        .await
        .map_err(|e| refusal("reading the hub", &e))?;
    let cap = registry
        .exposureCap(hub)
        .call()
        .await
        .map_err(|e| refusal("reading the hub's cap", &e))?;
    let wallet = HubWallet::new(hub, provider);
    let unbonding = registry
        .effectiveUnbonding()
        .call()
        .await
        .map_err(|e| refusal("reading the unbonding period", &e))?;
    let last_closed_at = info.lastClosedAt.to::<u64>();
    let exit_at = info.exitAt.to::<u64>();
    Ok(HubStatus {
        hub,
        state: HubState::from_code(info.state),
        operator: info.operator,
        signer: info.signer,
        fee_bps: info.feeBps,
        endpoint: info.endpoint,
        exit_at: if exit_at == 0 {
            0
        } else {
            exit_at.max(last_closed_at.saturating_add(unbonding.saturating_to::<u64>()))
        },
        deposit: wallet.deposit().call().await.map_err(chain)?,
        earnings: wallet.earnings().call().await.map_err(chain)?,
        open_jobs: info.openJobs.to::<u32>(),
        open_escrow: U256::from(info.openEscrow),
        exposure_cap: cap,
        last_closed_at,
    })
}

/// Withdraws `amount` of the hub's earnings (all of them if `None`) to `to`.
pub async fn hub_withdraw(
    provider: &DynProvider,
    hub: Address,
    to: Address,
    amount: Option<U256>,
) -> Result<(U256, B256), OpsError> {
    let wallet = HubWallet::new(hub, provider);
    let amount = match amount {
        Some(a) => a,
        None => wallet.earnings().call().await.map_err(chain)?,
    };
    if amount.is_zero() {
        return Err(OpsError::Invalid(format!(
            "hub {hub} has no earnings to withdraw"
        )));
    }
    let receipt: TransactionReceipt =
        transact("withdraw", wallet.withdrawEarnings(to, amount)).await?;
    Ok((amount, receipt.transaction_hash))
}

/// Announces the hub's exit, or with `complete` takes the deposit back once unbonded.
pub async fn hub_exit(
    provider: &DynProvider,
    d: &Deployment,
    hub: Address,
    complete: bool,
) -> Result<B256, OpsError> {
    let registry = HubRegistry::new(d.registry, provider);
    let receipt: TransactionReceipt = if complete {
        // Say why not in the operator's terms before the contract says it in its own.
        let status = hub_status(provider, d, hub).await?;
        if status.state == HubState::Exiting && status.open_jobs > 0 {
            return Err(OpsError::Invalid(format!(
                "hub {hub} still holds {} open job(s) with {} in escrow: the deposit stays frozen until every one is settled or refunded, and for the unbonding period after the last of them",
                status.open_jobs,
                fog(status.open_escrow)
            )));
        }
        let now = chain_time(provider).await?;
        if status.state == HubState::Exiting && now < status.exit_at {
            return Err(OpsError::Invalid(format!(
                "hub {hub} is unbonding until unix time {} ({} s from now): its deposit stays blacklistable until then",
                status.exit_at,
                status.exit_at - now
            )));
        }
        transact("completing the exit", registry.completeExit(hub)).await?
    } else {
        transact("announcing the exit", registry.announceExit(hub)).await?
    };
    Ok(receipt.transaction_hash)
}

/// anvil's first development account (its well-known test mnemonic): on a
/// devnet deployed by `fog deploy` it holds the token supply.
const ANVIL_KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// anvil's chain id.
const DEVNET_CHAIN_ID: u64 = 31_337;

/// Sends `tokens` and one ether of gas money to `to`, from anvil's first account; devnet only.
pub async fn devnet_faucet(
    rpc_url: &str,
    d: &Deployment,
    to: Address,
    tokens: U256,
) -> Result<(), OpsError> {
    if d.chain_id != DEVNET_CHAIN_ID {
        return Err(OpsError::Invalid(format!(
            "the faucet serves only a local devnet (chain {DEVNET_CHAIN_ID}); this deployment is on chain {}",
            d.chain_id
        )));
    }
    let key: PrivateKeySigner = ANVIL_KEY_0.parse().map_err(chain)?;
    let provider = signing_provider(rpc_url, key)?;
    let node_chain = provider.get_chain_id().await.map_err(chain)?;
    if node_chain != DEVNET_CHAIN_ID {
        return Err(OpsError::Invalid(format!(
            "{rpc_url} serves chain {node_chain}, not a devnet"
        )));
    }
    token_transfer(&provider, d, to, tokens).await?;
    let gas = TransactionRequest::default()
        .with_to(to)
        .with_value(U256::from(10u64).pow(U256::from(18u64)));
    let receipt = provider
        .send_transaction(gas)
        .await
        .map_err(chain)?
        .get_receipt()
        .await
        .map_err(chain)?;
    if !receipt.status() {
        return Err(OpsError::Chain("sending gas money reverted".into()));
    }
    Ok(())
}

/// Moves a devnet's clock `seconds` ahead and mines a block there (anvil
/// only): votes, timelocks, deadlines and unbonding all run on chain time.
/// Returns the new chain time.
pub async fn devnet_advance(rpc_url: &str, d: &Deployment, seconds: u64) -> Result<u64, OpsError> {
    if d.chain_id != DEVNET_CHAIN_ID {
        return Err(OpsError::Invalid(format!(
            "only a local devnet's clock can be moved (chain {DEVNET_CHAIN_ID}); this deployment is on chain {}",
            d.chain_id
        )));
    }
    let url = rpc_url
        .parse()
        .map_err(|e| OpsError::Invalid(format!("--chain-rpc {rpc_url:?}: {e}")))?;
    let provider = ProviderBuilder::new().connect_http(url);
    let node_chain = provider.get_chain_id().await.map_err(chain)?;
    if node_chain != DEVNET_CHAIN_ID {
        return Err(OpsError::Invalid(format!(
            "{rpc_url} serves chain {node_chain}, not a devnet"
        )));
    }
    let _: serde_json::Value = provider
        .raw_request("evm_increaseTime".into(), (seconds,))
        .await
        .map_err(chain)?;
    let _: serde_json::Value = provider
        .raw_request("evm_mine".into(), ())
        .await
        .map_err(chain)?;
    chain_time(&provider).await
}

use fog_protocol::batch::Permit;

/// An EIP-2612 permit for `spender` to take `value` of `key`'s tokens until
/// `deadline`, signed under the token's own domain: `(v, r, s)`.
pub(crate) async fn sign_permit<P: Provider>(
    token: &FogToken::FogTokenInstance<P>,
    chain_id: u64,
    key: &PrivateKeySigner,
    spender: Address,
    value: U256,
    deadline: u64,
) -> Result<(u8, B256, B256), OpsError> {
    use alloy::signers::SignerSync;
    use alloy::sol_types::SolStruct;
    let owner = key.address();
    let nonce = token.nonces(owner).call().await.map_err(chain)?;
    let name = token.name().call().await.map_err(chain)?;
    let permit = Permit {
        owner,
        spender,
        value,
        nonce,
        deadline: U256::from(deadline),
    };
    let domain = alloy::sol_types::eip712_domain! {
        name: name,
        version: "1",
        chain_id: chain_id,
        verifying_contract: *token.address(),
    };
    let signature = key
        .sign_hash_sync(&permit.eip712_signing_hash(&domain))
        .map_err(chain)?;
    Ok((
        27 + u8::from(signature.v()),
        signature.r().into(),
        signature.s().into(),
    ))
}

/// An account of the batched settlement path (docs/settlement.md).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAccount {
    pub address: Address,
    /// Deposited: pays for batched jobs; leaves after the withdrawal delay.
    pub balance: U256,
    /// Earned: leaves at once, or becomes balance in one step.
    pub earned: U256,
    /// Asked-for withdrawal of the balance, if any.
    pub withdrawal: U256,
    /// When the asked-for withdrawal may be taken (chain time).
    pub withdrawable_at: Option<u64>,
}

fn batch_contract<'a>(
    provider: &'a DynProvider,
    d: &Deployment,
) -> Result<BatchSettlement::BatchSettlementInstance<&'a DynProvider>, OpsError> {
    if d.batch == Address::ZERO {
        return Err(OpsError::Invalid(
            "this deployment has no batched settlement contract (it predates it): redeploy, \
             or on a devnet `fog devnet down` and `fog devnet up` with a fresh state"
                .into(),
        ));
    }
    Ok(BatchSettlement::new(d.batch, provider))
}

pub async fn batch_account(
    provider: &DynProvider,
    d: &Deployment,
    who: Address,
) -> Result<BatchAccount, OpsError> {
    let a = batch_contract(provider, d)?
        .accountOf(who)
        .call()
        .await
        .map_err(chain)?;
    Ok(BatchAccount {
        address: who,
        balance: U256::from(a.balance),
        earned: U256::from(a.earned),
        withdrawal: U256::from(a.withdrawal),
        withdrawable_at: (a.withdrawableAt != alloy::primitives::aliases::U40::ZERO)
            .then(|| a.withdrawableAt.to::<u64>()),
    })
}

/// Deposits `amount` of the key's tokens into its batch account: one
/// transaction, with a permit instead of an allowance.
pub async fn batch_deposit(
    provider: &DynProvider,
    d: &Deployment,
    key: &PrivateKeySigner,
    amount: U256,
) -> Result<B256, OpsError> {
    let batch = batch_contract(provider, d)?;
    let token = FogToken::new(d.token, provider);
    let owner = key.address();
    let held = token.balanceOf(owner).call().await.map_err(chain)?;
    if held < amount {
        return Err(OpsError::Invalid(format!(
            "{owner} holds {}, less than the {} to deposit: get tokens (`fog token transfer` from a \
             holder; on a devnet `fog devnet faucet`)",
            fog(held),
            fog(amount)
        )));
    }
    let deadline = chain_time(provider).await? + 3_600;
    let (v, r, s) = sign_permit(&token, d.chain_id, key, d.batch, amount, deadline).await?;
    let receipt = transact(
        "deposit",
        batch.depositWithPermit(amount, U256::from(deadline), v, r, s),
    )
    .await?;
    Ok(receipt.transaction_hash)
}

/// Deposits `amount` of the key's tokens into another account (a hub's bond,
/// say): an allowance, then the deposit.
pub async fn batch_deposit_for(
    provider: &DynProvider,
    d: &Deployment,
    key: &PrivateKeySigner,
    to: Address,
    amount: U256,
) -> Result<B256, OpsError> {
    let batch = batch_contract(provider, d)?;
    let token = FogToken::new(d.token, provider);
    let owner = key.address();
    let held = token.balanceOf(owner).call().await.map_err(chain)?;
    if held < amount {
        return Err(OpsError::Invalid(format!(
            "{owner} holds {}, less than the {} to deposit",
            fog(held),
            fog(amount)
        )));
    }
    transact("approve the deposit", token.approve(d.batch, amount)).await?;
    let receipt = transact("deposit", batch.deposit(to, amount)).await?;
    Ok(receipt.transaction_hash)
}

/// What to do with an account.
#[derive(Clone, Copy, Debug)]
pub enum BatchMove {
    /// Earned tokens become balance (to pay for jobs).
    SpendEarnings,
    /// Earned tokens leave to the wallet, at once.
    WithdrawEarnings,
    /// Ask to withdraw balance after the delay (0 cancels).
    RequestWithdrawal,
}

pub async fn batch_move(
    provider: &DynProvider,
    d: &Deployment,
    who: Address,
    action: BatchMove,
    amount: U256,
) -> Result<B256, OpsError> {
    let batch = batch_contract(provider, d)?;
    let account = batch_account(provider, d, who).await?;
    let receipt = match action {
        BatchMove::SpendEarnings | BatchMove::WithdrawEarnings if account.earned < amount => {
            return Err(OpsError::Invalid(format!(
                "{who} has earned {}, less than the {} asked for",
                fog(account.earned),
                fog(amount)
            )));
        }
        BatchMove::SpendEarnings => {
            transact("spend earnings", batch.spendEarnings(who, amount)).await?
        }
        BatchMove::WithdrawEarnings => {
            transact("withdraw earnings", batch.withdrawEarnings(who, amount)).await?
        }
        BatchMove::RequestWithdrawal => {
            transact("request a withdrawal", batch.requestWithdrawal(who, amount)).await?
        }
    };
    Ok(receipt.transaction_hash)
}

/// Takes a ripe withdrawal of the balance; returns the transaction and what left.
pub async fn batch_withdraw(
    provider: &DynProvider,
    d: &Deployment,
    who: Address,
) -> Result<(B256, U256), OpsError> {
    let batch = batch_contract(provider, d)?;
    let account = batch_account(provider, d, who).await?;
    let now = chain_time(provider).await?;
    match account.withdrawable_at {
        None => {
            return Err(OpsError::Invalid(format!(
                "{who} has not asked to withdraw: `fog account request-withdrawal AMOUNT` first, then \
                 wait the withdrawal delay"
            )));
        }
        Some(at) if at > now => {
            return Err(OpsError::Invalid(format!(
                "the withdrawal of {} is ready in {} s (at chain time {at}): jobs signed before it \
                 may still be settled or claimed until then",
                fog(account.withdrawal),
                at - now
            )));
        }
        Some(_) => {}
    }
    let receipt = transact("withdraw", batch.withdraw(who)).await?;
    let paid = account.withdrawal.min(account.balance);
    Ok((receipt.transaction_hash, paid))
}
