// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IBatchJobErrors, IReceiptErrors} from "./IFogErrors.sol";
import {IBatchSettlement} from "./IBatchSettlement.sol";

/// @title IBatchVerifier
/// @notice Checks everything behind one batched job and computes its hashes: the buyer's JobAuth
///         signature and terms, the k receipts as the escrow checks them (same job, spec and hub,
///         agreeing output, distinct miners, assignments by the hub's signer, charges within the
///         assignments), and the payment within the buyer's cap. Stateless; BatchSettlement calls it
///         in disputes and forced claims.
interface IBatchVerifier is IReceiptErrors, IBatchJobErrors {
    /// @notice What one verified job amounts to (internal to the checks).
    /// @param jobId The job.
    /// @param minersTotal What the miners charged together.
    /// @param total What the buyer pays: the charges plus the commission.
    /// @param receiptsCommitment keccak256 of the receipts' struct hashes, in order.
    /// @param leaf The job's leaf hash.
    struct Checked {
        bytes32 jobId;
        uint256 minersTotal;
        uint256 total;
        bytes32 receiptsCommitment;
        bytes32 leaf;
    }

    /// @notice What a caller vouches for: the epoch (for answers) and where signers and domains come from.
    /// @param hub The hub the jobs must name.
    /// @param account The challenged account (answers only).
    /// @param root The epoch's Merkle root (answers only).
    /// @param committedAt The epoch's commit time: every job's deadline must be after it (answers only).
    /// @param registry The hub registry, for the signer of each job's assignment signer version.
    /// @param batchSeparator BatchSettlement's EIP-712 domain separator (JobAuths).
    /// @param escrowSeparator The escrow's EIP-712 domain separator (assignments, receipts).
    struct Context {
        address hub;
        address account;
        bytes32 root;
        uint40 committedAt;
        address registry;
        bytes32 batchSeparator;
        bytes32 escrowSeparator;
    }

    /// @notice One revealed job, for the caller's evidence events.
    /// @param jobId The job.
    /// @param leaf Its leaf hash.
    /// @param receiptsCommitment Its receipts' commitment.
    struct Revealed {
        bytes32 jobId;
        bytes32 leaf;
        bytes32 receiptsCommitment;
    }

    /// @notice What an answer's jobs amount to for the challenged account.
    /// @param paid What the account paid as a buyer.
    /// @param earned What it earned as a miner.
    /// @param answeredJobs keccak256 of the job ids, in order.
    /// @param revealed The jobs.
    struct Answer {
        uint256 paid;
        uint256 earned;
        bytes32 answeredJobs;
        Revealed[] revealed;
    }

    /// @notice What a forced claim's job amounts to.
    /// @param jobId The job.
    /// @param hub Its hub.
    /// @param buyer Its buyer.
    /// @param deadline Its JobAuth's deadline.
    /// @param minersTotal What its miners charged.
    /// @param payout keccak256(abi.encode(miners, amounts)).
    /// @param receiptsCommitment Its receipts' commitment.
    struct Claimed {
        bytes32 jobId;
        address hub;
        address buyer;
        uint64 deadline;
        uint256 minersTotal;
        bytes32 payout;
        bytes32 receiptsCommitment;
    }

    /// @notice Checks an answer's jobs (`abi.encode(BatchJob[])`), each whole, in its epoch, ids strictly
    ///         increasing; reverts with the first reason one does not hold.
    /// @param encodedJobs The jobs.
    /// @param ctx The epoch and where signers come from.
    /// @return The account's share and the revealed jobs.
    function checkAnswer(bytes calldata encodedJobs, Context calldata ctx)
        external
        view
        returns (Answer memory);

    /// @notice Checks a forced claim's job (`abi.encode(BatchJob)`), without commission.
    /// @param encodedJob The job.
    /// @param ctx Where signers come from (hub, account, root and committedAt unused).
    /// @return What the claim is.
    function checkClaim(bytes calldata encodedJob, Context calldata ctx)
        external
        view
        returns (Claimed memory);

    /// @notice The id of the batched job `buyer` authorises with `salt`; never a per-job escrow id.
    /// @param buyer The buyer.
    /// @param salt The buyer's salt.
    /// @return The job id.
    function jobIdFor(address buyer, bytes32 salt) external pure returns (bytes32);

    /// @notice EIP-712 struct hash of a JobAuth.
    /// @param auth The authorisation.
    /// @return The struct hash.
    function hashJobAuth(IBatchSettlement.JobAuth calldata auth) external pure returns (bytes32);

    /// @notice A leaf of an epoch's Merkle tree (double-hashed, as OpenZeppelin's StandardMerkleTree).
    /// @param leaf The leaf's fields.
    /// @return The leaf hash.
    function leafHash(IBatchSettlement.Leaf calldata leaf) external pure returns (bytes32);
}
