//! Batched jobs built as a buyer, a hub and miners would (real keys, real
//! EIP-712 signatures), for the live tests and the gas table.

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use fog_protocol::batch::{BatchedJob, JobAuth, Ledger, MerkleTree, SignedJobAuth};
use fog_protocol::deploy::Deployment;
use fog_protocol::{Assignment, Receipt, Signed};

/// Who a batched job involves.
#[derive(Debug)]
pub struct Parties<'a> {
    pub buyer: &'a PrivateKeySigner,
    pub hub: Address,
    pub hub_signer: &'a PrivateKeySigner,
    pub miners: &'a [&'a PrivateKeySigner],
}

/// One job: the buyer's authorisation, the hub's assignments and the miners'
/// agreeing receipts, each charging `charge`.
pub fn make_job(
    d: &Deployment,
    parties: &Parties<'_>,
    salt: B256,
    charge: U256,
    max_payment: U256,
    deadline: u64,
    fee_bps: u16,
) -> anyhow::Result<BatchedJob> {
    let spec_hash = alloy::primitives::keccak256(salt);
    let auth = JobAuth {
        salt,
        specHash: spec_hash,
        hub: parties.hub,
        maxPayment: max_payment,
        deadline,
        replicas: u16::try_from(parties.miners.len())?,
        maxFeeBps: fee_bps,
    };
    let auth: SignedJobAuth = Signed::sign(auth, parties.buyer, &d.batch_domain())?;
    let job_id = fog_protocol::batch::batch_job_id(parties.buyer.address(), salt);
    let mut receipts = Vec::new();
    for miner in parties.miners {
        let assignment = Signed::sign(
            Assignment {
                jobId: job_id,
                specHash: spec_hash,
                hub: parties.hub,
                miner: miner.address(),
                maxCharge: charge,
            },
            parties.hub_signer,
            &d.domain(),
        )?;
        let receipt = Signed::sign(
            Receipt {
                jobId: job_id,
                specHash: spec_hash,
                hub: parties.hub,
                miner: miner.address(),
                imageId: B256::repeat_byte(1),
                outputHash: B256::repeat_byte(2),
                exitCode: 0,
                startedAt: deadline.saturating_sub(3_000),
                endedAt: deadline.saturating_sub(2_990),
                cpuTimeMs: 4_000,
                peakMemoryBytes: 32 << 20,
                amountCharged: charge,
            },
            miner,
            &d.domain(),
        )?;
        receipts.push((assignment, receipt));
    }
    Ok(BatchedJob {
        buyer: parties.buyer.address(),
        auth,
        signer_version: 0,
        fee_bps,
        receipts,
    })
}

/// An epoch as a hub builds it: the tree of the jobs' leaves and the ledger.
#[derive(Debug)]
pub struct Epoch {
    pub tree: MerkleTree,
    pub entries: Vec<U256>,
}

pub fn epoch_of(jobs: &[BatchedJob], hub: Address) -> anyhow::Result<Epoch> {
    let mut ledger = Ledger::default();
    let mut leaves = Vec::with_capacity(jobs.len());
    for job in jobs {
        job.book(&mut ledger, hub);
        leaves.push(
            job.leaf()
                .ok_or_else(|| anyhow::anyhow!("a job's total does not fit 96 bits"))?
                .hash(),
        );
    }
    Ok(Epoch {
        tree: MerkleTree::new(leaves),
        entries: ledger.entries()?,
    })
}

alloy::sol! {
    struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
}

/// `depositWithPermit` of `amount` into `who`'s own account: one transaction,
/// no allowance beforehand. `who` must hold the tokens and gas money.
pub async fn deposit_with_permit(
    devnet: &crate::devnet::Devnet,
    who: &PrivateKeySigner,
    amount: U256,
) -> anyhow::Result<alloy::rpc::types::TransactionReceipt> {
    use alloy::signers::SignerSync;
    use alloy::sol_types::{SolStruct, eip712_domain};
    use fog_protocol::contracts::batch_settlement::BatchSettlement;
    use fog_protocol::contracts::fog_token::FogToken;
    let d = &devnet.deployment;
    let provider = devnet.provider(who);
    let token = FogToken::new(d.token, &provider);
    let nonce = token.nonces(who.address()).call().await?;
    let deadline = U256::from(devnet.now().await? + 3_600);
    let permit = Permit {
        owner: who.address(),
        spender: d.batch,
        value: amount,
        nonce,
        deadline,
    };
    let domain = eip712_domain! {
        name: "Fog",
        version: "1",
        chain_id: d.chain_id,
        verifying_contract: d.token,
    };
    let sig = who.sign_hash_sync(&permit.eip712_signing_hash(&domain))?;
    let batch = BatchSettlement::new(d.batch, &provider);
    crate::devnet::mined(
        batch
            .depositWithPermit(
                amount,
                deadline,
                27 + u8::from(sig.v()),
                sig.r().into(),
                sig.s().into(),
            )
            .send()
            .await?
            .get_receipt()
            .await?,
    )
}
