//! `make gas-table`: whole-transaction gas (intrinsic + calldata + execution,
//! from real receipts) of each operation on a live anvil, as a Markdown table.
#![allow(clippy::print_stdout)] // a report command: its output is the table

use alloy::primitives::{B256, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolStruct, eip712_domain};
use anyhow::Context;
use fog_protocol::contracts::fog_governor::FogGovernor;
use fog_protocol::contracts::fog_token::FogToken;
use fog_protocol::contracts::hub_registry::HubRegistry;
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::contracts::settlement_entry;
use fog_protocol::{Assignment, Receipt, Signed};
use fog_tests::devnet::{Devnet, JobTerms, mined};

alloy::sol! {
    struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
}

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let devnet = Devnet::start().await?;
    let d = devnet.deployment.clone();
    let domain = d.domain();
    let operator = devnet.keys[1].clone();
    let buyer = devnet.keys[2].clone();
    let hub_signer = PrivateKeySigner::random();
    let mut rows: Vec<(String, u64)> = Vec::new();

    let (hub, register) = devnet
        .register_hub(&operator, hub_signer.address(), 500)
        .await?;
    rows.push((
        "register (creates HubWallet, locks deposit)".into(),
        register.gas_used,
    ));
    devnet.fund(buyer.address(), ether(10_000)).await?;
    let escrow = JobEscrow::new(d.escrow, devnet.provider(&buyer));
    let token = FogToken::new(d.token, devnet.provider(&buyer));

    for k in [1u16, 3] {
        // open + settle, with miners that have never held tokens (worst case).
        let now = devnet.now().await?;
        let spec_hash = B256::repeat_byte(k as u8);
        let terms = JobTerms {
            hub,
            spec_hash,
            replicas: k,
            max_payment: ether(100),
            deadline: now + 3_600,
            max_duration: 600,
        };
        let (job_id, open) = devnet
            .open_job(&buyer, B256::repeat_byte(0x10 + k as u8), &terms)
            .await?;
        rows.push((format!("open k={k}"), open.gas_used));
        let mut entries = Vec::new();
        for _ in 0..k {
            let miner = PrivateKeySigner::random();
            let assignment = Signed::sign(
                Assignment {
                    jobId: job_id,
                    specHash: spec_hash,
                    hub,
                    miner: miner.address(),
                    maxCharge: ether(10),
                },
                &hub_signer,
                &domain,
            )?;
            let receipt = Signed::sign(
                Receipt {
                    jobId: job_id,
                    specHash: spec_hash,
                    hub,
                    miner: miner.address(),
                    imageId: B256::repeat_byte(1),
                    outputHash: B256::repeat_byte(2),
                    exitCode: 0,
                    startedAt: now,
                    endedAt: now + 5,
                    cpuTimeMs: 4_000,
                    peakMemoryBytes: 32 << 20,
                    amountCharged: ether(5),
                },
                &miner,
                &domain,
            )?;
            entries.push(settlement_entry(&receipt, &assignment));
        }
        let settle = mined(
            escrow
                .settle(job_id, entries)
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        rows.push((format!("settle k={k}"), settle.gas_used));
        rows.push((
            format!("open + settle k={k}"),
            open.gas_used + settle.gas_used,
        ));

        // openWithPermit, then let it expire and refund.
        let nonce = token.nonces(buyer.address()).call().await?;
        let permit = Permit {
            owner: buyer.address(),
            spender: d.escrow,
            value: ether(100),
            nonce,
            deadline: U256::from(now + 600),
        };
        let token_domain = eip712_domain! { name: "Fog", version: "1", chain_id: d.chain_id, verifying_contract: d.token, };
        let sig = buyer.sign_hash_sync(&permit.eip712_signing_hash(&token_domain))?;
        let opened = mined(
            escrow
                .openWithPermit(
                    B256::repeat_byte(0x20 + k as u8),
                    hub,
                    spec_hash,
                    now + 60 + 600 + fog_protocol::SETTLEMENT_WINDOW_SECS,
                    k,
                    ether(100),
                    600,
                    U256::from(now + 600),
                    27 + u8::from(sig.v()),
                    sig.r().into(),
                    sig.s().into(),
                )
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        rows.push((
            format!("openWithPermit k={k} (one transaction)"),
            opened.gas_used,
        ));
        let job_id = escrow
            .jobIdFor(buyer.address(), B256::repeat_byte(0x20 + k as u8))
            .call()
            .await?;
        devnet
            .advance(120 + 600 + fog_protocol::SETTLEMENT_WINDOW_SECS)
            .await?;
        let refund = mined(escrow.refund(job_id).send().await?.get_receipt().await?)?;
        rows.push((format!("refund k={k}"), refund.gas_used));
    }

    // Blacklist through a real vote; the supply holder delegates to itself and votes.
    let voter = devnet.treasury_key().clone();
    let gov_token = FogToken::new(d.token, devnet.provider(&voter));
    mined(
        gov_token
            .delegate(voter.address())
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    devnet.advance(1).await?;
    let governor = FogGovernor::new(d.governor, devnet.provider(&voter));
    let call = HubRegistry::blacklistCall {
        hub,
        evidenceJobId: B256::ZERO,
    };
    let data: alloy::primitives::Bytes = alloy::sol_types::SolCall::abi_encode(&call).into();
    let description = "Blacklist hub".to_string();
    let desc_hash = alloy::primitives::keccak256(description.as_bytes());
    let propose = mined(
        governor
            .propose(
                vec![d.registry],
                vec![U256::ZERO],
                vec![data.clone()],
                description.clone(),
            )
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    let id = governor
        .hashProposal(
            vec![d.registry],
            vec![U256::ZERO],
            vec![data.clone()],
            desc_hash,
        )
        .call()
        .await?;
    devnet.advance(d.params.voting_delay + 1).await?;
    let vote = mined(governor.castVote(id, 1).send().await?.get_receipt().await?)?;
    devnet
        .advance(u64::from(d.params.voting_period) + 1)
        .await?;
    let queue = mined(
        governor
            .queue(
                vec![d.registry],
                vec![U256::ZERO],
                vec![data.clone()],
                desc_hash,
            )
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    devnet.advance(d.params.timelock_delay + 1).await?;
    let execute = mined(
        governor
            .execute(vec![d.registry], vec![U256::ZERO], vec![data], desc_hash)
            .send()
            .await?
            .get_receipt()
            .await?,
    )
    .context("executing the blacklist proposal")?;
    rows.push(("DAO propose (blacklist)".into(), propose.gas_used));
    rows.push(("DAO castVote".into(), vote.gas_used));
    rows.push(("DAO queue".into(), queue.gas_used));
    rows.push((
        "blacklist (DAO execute: timelock → registry → wallet → treasury)".into(),
        execute.gas_used,
    ));

    println!("| operation | gas used (whole transaction) |");
    println!("|---|---:|");
    for (name, gas) in rows {
        println!("| {name} | {gas} |");
    }
    Ok(())
}
