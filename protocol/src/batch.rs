//! The off-chain half of the batched settlement path (`BatchSettlement`,
//! docs/settlement.md): the buyer's per-job authorisation, batched job ids,
//! an epoch's leaves and Merkle tree, and its packed ledger. Every hash here
//! has a view on the contract that computes the same; the live test
//! `batch_hashes_match_the_contract` compares them.

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::{Eip712Domain, SolValue, eip712_domain};

use crate::signing::{FogStruct, Signed};
use crate::types::Receipt;

/// EIP-712 domain name of `BatchSettlement` (job authorisations are signed
/// under it; receipts and assignments stay under the escrow's domain).
pub const BATCH_DOMAIN_NAME: &str = "Fog Batch";

alloy::sol! {
    /// A buyer's permission for one batched job: the hub may charge at most
    /// `maxPayment` for it (commission included), in an epoch committed
    /// before `deadline`, on `replicas` agreeing receipts.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct JobAuth {
        bytes32 salt;
        bytes32 specHash;
        address hub;
        uint256 maxPayment;
        uint64 deadline;
        uint16 replicas;
        uint16 maxFeeBps;
    }

    /// A job's leaf in an epoch's Merkle tree (field for field the contract's `Leaf`).
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Leaf {
        bytes32 jobId;
        address buyer;
        bytes32 authHash;
        bytes32 receiptsCommitment;
        uint96 total;
        uint64 deadline;
        uint16 signerVersion;
        uint16 feeBps;
    }
}

alloy::sol! {
    /// A receipt with the two signatures that make it count, as the contracts take it.
    #[derive(Debug, PartialEq, Eq)]
    struct ChainReceipt {
        Receipt receipt;
        uint256 maxCharge;
        bytes assignmentSignature;
        bytes receiptSignature;
    }

    /// A batched job with all its evidence, as `BatchSettlement.answer`
    /// (`abi.encode(BatchJob[])`) and `forceClaim` (`abi.encode(BatchJob)`) take it.
    #[derive(Debug, PartialEq, Eq)]
    struct ChainBatchJob {
        address buyer;
        JobAuth auth;
        bytes authSignature;
        uint16 signerVersion;
        uint16 feeBps;
        ChainReceipt[] receipts;
        bytes32[] proof;
    }
}

alloy::sol! {
    /// EIP-2612's permit, signed under the token's own domain.
    #[derive(Debug, PartialEq, Eq)]
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

impl FogStruct for JobAuth {}

/// A buyer-signed job authorisation (under [`batch_domain`]).
pub type SignedJobAuth = Signed<JobAuth>;

/// The EIP-712 domain of one `BatchSettlement` deployment.
pub fn batch_domain(chain_id: u64, batch: Address) -> Eip712Domain {
    eip712_domain! {
        name: BATCH_DOMAIN_NAME,
        version: crate::signing::DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: batch,
    }
}

/// The id of the batched job `buyer` authorises with `salt`; never equal to
/// a per-job escrow id (whose preimage is `abi.encode(buyer, salt)`).
pub fn batch_job_id(buyer: Address, salt: B256) -> B256 {
    keccak256((keccak256("fog.batch.job"), buyer, salt).abi_encode())
}

/// keccak256 of the receipts' struct hashes in order: the escrow's evidence form.
pub fn receipts_commitment<'a>(receipts: impl IntoIterator<Item = &'a Receipt>) -> B256 {
    let mut bytes = Vec::new();
    for r in receipts {
        bytes.extend_from_slice(r.struct_hash().as_slice());
    }
    keccak256(bytes)
}

impl Leaf {
    /// The leaf's hash in the tree: double keccak of its ABI encoding, so that
    /// no inner node can pass for a leaf.
    pub fn hash(&self) -> B256 {
        keccak256(keccak256(self.abi_encode()))
    }
}

/// A Merkle tree whose pairs are hashed sorted (OpenZeppelin's `MerkleProof`
/// convention); a level's odd last node moves up unpaired.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    levels: Vec<Vec<B256>>,
}

impl MerkleTree {
    /// The tree over `leaves` (leaf hashes, in order); an empty tree has root zero.
    pub fn new(leaves: Vec<B256>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let up = below
                .chunks(2)
                .map(|pair| match pair {
                    [a, b] => hash_pair(*a, *b),
                    [a] => *a,
                    _ => B256::ZERO,
                })
                .collect();
            levels.push(up);
        }
        Self { levels }
    }

    pub fn root(&self) -> B256 {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The siblings from leaf `index` up to the root (None past the end).
    pub fn proof(&self, mut index: usize) -> Option<Vec<B256>> {
        if index >= self.len() {
            return None;
        }
        let mut proof = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(index ^ 1) {
                proof.push(*sibling);
            }
            index /= 2;
        }
        Some(proof)
    }

    /// Whether `proof` leads from `leaf` to `root`.
    pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
        proof.iter().fold(leaf, |node, s| hash_pair(node, *s)) == root
    }
}

fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(lo.as_slice());
    bytes[32..].copy_from_slice(hi.as_slice());
    keccak256(bytes)
}

/// Everything behind one batched job: what an epoch commits to, what answers
/// a challenge and what a miner's forced claim presents.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchedJob {
    pub buyer: Address,
    pub auth: SignedJobAuth,
    /// The hub signer version that signed the assignments.
    pub signer_version: u16,
    /// The commission the hub takes (at most `auth.maxFeeBps`).
    pub fee_bps: u16,
    /// The k agreeing receipts, each with the assignment it answers.
    pub receipts: Vec<(crate::SignedAssignment, crate::SignedReceipt)>,
}

const BPS: u64 = 10_000;

impl BatchedJob {
    pub fn job_id(&self) -> B256 {
        batch_job_id(self.buyer, self.auth.payload.salt)
    }

    /// What the miners charged together.
    pub fn miners_total(&self) -> U256 {
        self.receipts
            .iter()
            .map(|(_, r)| r.payload.amountCharged)
            .sum()
    }

    /// What the buyer pays: the charges plus the commission on them.
    pub fn total(&self) -> U256 {
        let miners = self.miners_total();
        miners + miners * U256::from(self.fee_bps) / U256::from(BPS)
    }

    /// Its leaf (None if the total does not fit the leaf's 96 bits).
    pub fn leaf(&self) -> Option<Leaf> {
        let total =
            alloy::primitives::aliases::U96::checked_from_limbs_slice(self.total().as_limbs())?;
        Some(Leaf {
            jobId: self.job_id(),
            buyer: self.buyer,
            authHash: self.auth.payload.struct_hash(),
            receiptsCommitment: receipts_commitment(self.receipts.iter().map(|(_, r)| &r.payload)),
            total,
            deadline: self.auth.payload.deadline,
            signerVersion: self.signer_version,
            feeBps: self.fee_bps,
        })
    }

    /// The job with its leaf's Merkle proof, in the contracts' form.
    pub fn to_chain(&self, proof: Vec<B256>) -> ChainBatchJob {
        ChainBatchJob {
            buyer: self.buyer,
            auth: self.auth.payload.clone(),
            authSignature: self.auth.signature.as_bytes().to_vec().into(),
            signerVersion: self.signer_version,
            feeBps: self.fee_bps,
            receipts: self
                .receipts
                .iter()
                .map(|(assignment, receipt)| ChainReceipt {
                    receipt: receipt.payload.clone(),
                    maxCharge: assignment.payload.maxCharge,
                    assignmentSignature: assignment.signature.as_bytes().to_vec().into(),
                    receiptSignature: receipt.signature.as_bytes().to_vec().into(),
                })
                .collect(),
            proof,
        }
    }

    /// Adds the job's debit and credits to an epoch's ledger.
    pub fn book(&self, ledger: &mut Ledger, hub: Address) {
        ledger.debit(self.buyer, self.total());
        for (_, r) in &self.receipts {
            ledger.credit(r.payload.miner, r.payload.amountCharged);
        }
        let fee = self.total() - self.miners_total();
        if fee != U256::ZERO {
            ledger.credit(hub, fee);
        }
    }
}

/// An epoch as committed (`BatchSettlement.EpochRef`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EpochRef {
    pub hub: Address,
    pub index: u32,
    pub root: B256,
    pub ledger_hash: B256,
    pub committed_at: u64,
}

impl EpochRef {
    /// What the contract stores for it: `keccak256(abi.encode(root, ledgerHash, committedAt))`.
    pub fn stored_hash(&self) -> B256 {
        keccak256((self.root, self.ledger_hash, U256::from(self.committed_at)).abi_encode())
    }
}

/// Where a settled batched job is: its epoch, its leaf, the leaf's proof and
/// the receipts the leaf commits to. Checked against the chain's
/// `epochHash(hub, index)`, it proves those receipts were settled — the
/// batched path's counterpart of the escrow's `ReceiptSettled` events.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobProof {
    pub epoch: EpochRef,
    pub leaf: Leaf,
    pub proof: Vec<B256>,
    pub receipts: Vec<crate::SignedReceipt>,
}

impl JobProof {
    /// Whether the leaf is in the epoch's tree and commits to these receipts,
    /// each signed by its miner for this job and agreeing on the output (the
    /// chain check is `epoch.stored_hash()`).
    pub fn verify(&self, escrow_domain: &Eip712Domain) -> bool {
        MerkleTree::verify(&self.proof, self.epoch.root, self.leaf.hash())
            && !self.receipts.is_empty()
            && receipts_commitment(self.receipts.iter().map(|r| &r.payload))
                == self.leaf.receiptsCommitment
            && self.receipts.iter().all(|r| {
                r.payload.jobId == self.leaf.jobId
                    && r.payload.outputHash == self.receipts[0].payload.outputHash
                    && r.verify(escrow_domain).is_ok()
            })
    }

    /// The output hash the receipts agree on.
    pub fn output_hash(&self) -> Option<B256> {
        self.receipts.first().map(|r| r.payload.outputHash)
    }
}

/// `abi.encode(jobs)`: what `BatchSettlement.answer` takes.
pub fn encode_jobs(jobs: Vec<ChainBatchJob>) -> alloy::primitives::Bytes {
    (jobs,).abi_encode_params().into()
}

/// `abi.encode(job)`: what `BatchSettlement.forceClaim` takes.
pub fn encode_job(job: ChainBatchJob) -> alloy::primitives::Bytes {
    (job,).abi_encode_params().into()
}

/// Largest amount one ledger entry carries (94 bits).
pub fn max_entry_amount() -> U256 {
    (U256::from(1u8) << 94) - U256::from(1u8)
}

/// Why a ledger cannot be packed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LedgerError {
    #[error("account {account} changes by {amount} in one epoch, above the 94-bit entry limit")]
    TooLarge { account: Address, amount: U256 },
}

/// An epoch's net change per account, packed as `BatchSettlement.packEntry`
/// packs it: the account in the top 160 bits, a debit flag in bit 95, a
/// payout flag in bit 94, the amount below. Entries come out sorted by
/// account, zero changes left out.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    credits: BTreeMap<Address, U256>,
    debits: BTreeMap<Address, U256>,
    payouts: std::collections::BTreeSet<Address>,
}

impl Ledger {
    /// Pays `account`'s net credit straight to its wallet in the commit (no
    /// withdrawal transaction later); a net debit is unaffected.
    pub fn pay_out(&mut self, account: Address) {
        self.payouts.insert(account);
    }

    pub fn credit(&mut self, account: Address, amount: U256) {
        *self.credits.entry(account).or_default() += amount;
    }

    pub fn debit(&mut self, account: Address, amount: U256) {
        *self.debits.entry(account).or_default() += amount;
    }

    /// Total debited (= total credited in a balanced epoch).
    pub fn total_debits(&self) -> U256 {
        self.debits.values().copied().sum()
    }

    /// The packed entries, one per account whose net change is not zero.
    pub fn entries(&self) -> Result<Vec<U256>, LedgerError> {
        let mut accounts: Vec<Address> = self
            .credits
            .keys()
            .chain(self.debits.keys())
            .copied()
            .collect();
        accounts.sort();
        accounts.dedup();
        let mut out = Vec::with_capacity(accounts.len());
        for account in accounts {
            let credit = self.credits.get(&account).copied().unwrap_or_default();
            let debit = self.debits.get(&account).copied().unwrap_or_default();
            if credit == debit {
                continue;
            }
            let (is_debit, amount) = if debit > credit {
                (true, debit - credit)
            } else {
                (false, credit - debit)
            };
            let payout = !is_debit && self.payouts.contains(&account);
            out.push(pack_entry(account, is_debit, payout, amount)?);
        }
        Ok(out)
    }
}

/// Where `account`'s entry is in a packed ledger (what a challenge names).
pub fn entry_position(entries: &[U256], account: Address) -> Option<usize> {
    let key = U256::from_be_slice(account.as_slice());
    entries.iter().position(|e| (*e >> 96) == key)
}

/// One packed ledger entry (`payout` only on a credit).
pub fn pack_entry(
    account: Address,
    debit: bool,
    payout: bool,
    amount: U256,
) -> Result<U256, LedgerError> {
    if amount > max_entry_amount() {
        return Err(LedgerError::TooLarge { account, amount });
    }
    let bit = |on: bool, n: usize| if on { U256::from(1u8) << n } else { U256::ZERO };
    Ok((U256::from_be_slice(account.as_slice()) << 96)
        | bit(debit, 95)
        | bit(payout && !debit, 94)
        | amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_of_trees_of_many_sizes_proves_against_the_root() {
        for n in 1..=17usize {
            let leaves: Vec<B256> = (0..n)
                .map(|i| keccak256((i as u64).to_be_bytes()))
                .collect();
            let tree = MerkleTree::new(leaves.clone());
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = tree.proof(i).unwrap();
                assert!(
                    MerkleTree::verify(&proof, tree.root(), *leaf),
                    "n={n} i={i}"
                );
                assert!(!MerkleTree::verify(
                    &proof,
                    tree.root(),
                    B256::repeat_byte(7)
                ));
            }
            assert!(tree.proof(n).is_none());
        }
        assert_eq!(MerkleTree::new(vec![]).root(), B256::ZERO);
    }

    #[test]
    fn a_ledger_nets_each_account_sorts_and_refuses_oversized_entries() {
        let (a, b) = (Address::repeat_byte(2), Address::repeat_byte(1));
        let mut ledger = Ledger::default();
        ledger.debit(a, U256::from(10));
        ledger.credit(a, U256::from(3));
        ledger.credit(b, U256::from(7));
        ledger.credit(Address::repeat_byte(3), U256::ZERO);
        let entries = ledger.entries().unwrap();
        assert_eq!(
            entries,
            vec![
                pack_entry(b, false, false, U256::from(7)).unwrap(),
                pack_entry(a, true, false, U256::from(7)).unwrap()
            ]
        );
        assert_eq!(entries[1] >> 96, U256::from_be_slice(a.as_slice()));
        ledger.pay_out(b);
        ledger.pay_out(a);
        let paid = ledger.entries().unwrap();
        assert_eq!(
            paid[0],
            entries[0] | (U256::from(1u8) << 94),
            "a credit is paid out"
        );
        assert_eq!(paid[1], entries[1], "a debit never is");
        ledger.credit(b, max_entry_amount());
        assert!(matches!(
            ledger.entries(),
            Err(LedgerError::TooLarge { .. })
        ));
    }

    #[test]
    fn batched_job_ids_differ_from_escrow_ids() {
        let buyer = Address::repeat_byte(9);
        let salt = B256::repeat_byte(1);
        assert_ne!(
            batch_job_id(buyer, salt),
            keccak256((buyer, salt).abi_encode())
        );
    }
}
