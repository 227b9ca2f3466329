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
