// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IFogErrors
/// @notice Errors every Fog contract shares.
interface IFogErrors {
    /// @notice A zero address was given where a real one is needed.
    error ZeroAddress();
}

/// @title IReceiptErrors
/// @notice Why a set of receipts does not settle a job: the same checks in both settlement paths.
interface IReceiptErrors {
    /// @notice Replicas must be 1-16.
    error InvalidReplicas(uint16 replicas);
    /// @notice Exactly `replicas` receipts settle a job.
    error WrongReceiptCount(uint256 given, uint16 replicas);
    /// @notice The receipt names another job, spec or hub.
    error ReceiptMismatch(uint256 index);
    /// @notice The assignment is not signed by the hub's signer for this job.
    error InvalidAssignment(uint256 index);
    /// @notice The receipt is not signed by its miner.
    error InvalidReceiptSignature(uint256 index);
    /// @notice Two receipts from one miner.
    error DuplicateMiner(address miner);
    /// @notice The receipts disagree on the output.
    error OutputMismatch(uint256 index);
    /// @notice The receipt charges more than its assignment allows.
    error ChargeAboveAssignment(uint256 index, uint256 charged, uint256 maxCharge);
    /// @notice The receipt ends before it starts.
    error InvalidTimes(uint256 index);
}

/// @title IBatchJobErrors
/// @notice Why a batched job's authorisation or payment does not hold (BatchSettlement, BatchVerifier).
interface IBatchJobErrors {
    /// @notice The JobAuth's signature is not the buyer's.
    error InvalidAuthSignature(bytes32 jobId);
    /// @notice The JobAuth names another hub.
    error WrongHub(bytes32 jobId, address hub);
    /// @notice The commission is above what the buyer accepted.
    error FeeAboveAuth(bytes32 jobId, uint16 feeBps, uint16 maxFeeBps);
    /// @notice The receipts and commission cost more than the buyer's maximum.
    error PaymentAboveAuth(bytes32 jobId, uint256 payment, uint256 maxPayment);
    /// @notice Revealed job ids must be strictly increasing.
    error JobsOutOfOrder(uint256 index);
    /// @notice The job's leaf is not in the epoch's tree.
    error NotInEpoch(bytes32 jobId);
    /// @notice The job was committed in an epoch at or after its deadline.
    error LateInclusion(bytes32 jobId, uint64 deadline, uint40 committedAt);
}
