// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title FogTypes
/// @notice The EIP-712 structs of the Fog protocol and their struct hashes. The Rust side declares the
///         same structs (crate fog-protocol, `types.rs`); a parity test on a live chain compares both.
library FogTypes {
    /// @notice The hub's statement that `miner` may run `jobId`, charging at most `maxCharge`.
    struct Assignment {
        bytes32 jobId;
        bytes32 specHash;
        address hub;
        address miner;
        uint256 maxCharge;
    }

    /// @notice A miner's signed proof of execution.
    struct Receipt {
        bytes32 jobId;
        bytes32 specHash;
        address hub;
        address miner;
        bytes32 imageId;
        bytes32 outputHash;
        int32 exitCode;
        uint64 startedAt;
        uint64 endedAt;
        uint64 cpuTimeMs;
        uint64 peakMemoryBytes;
        uint256 amountCharged;
    }

    bytes32 internal constant ASSIGNMENT_TYPEHASH =
        keccak256("Assignment(bytes32 jobId,bytes32 specHash,address hub,address miner,uint256 maxCharge)");

    bytes32 internal constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(bytes32 jobId,bytes32 specHash,address hub,address miner,bytes32 imageId,bytes32 outputHash,int32 exitCode,uint64 startedAt,uint64 endedAt,uint64 cpuTimeMs,uint64 peakMemoryBytes,uint256 amountCharged)"
    );

    /// @dev Every field is static, so the ABI encoding of the struct is exactly EIP-712's encodeData
    ///      (int32 is sign-extended in both).
    function hash(Receipt calldata receipt) internal pure returns (bytes32) {
        return keccak256(abi.encode(RECEIPT_TYPEHASH, receipt));
    }

    /// @dev The assignment a receipt claims: the receipt's own identifiers plus the hub's price cap.
    function assignmentHash(Receipt calldata receipt, uint256 maxCharge) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                ASSIGNMENT_TYPEHASH, receipt.jobId, receipt.specHash, receipt.hub, receipt.miner, maxCharge
            )
        );
    }

    /// @dev Struct hash of a whole assignment.
    function hash(Assignment calldata assignment) internal pure returns (bytes32) {
        return keccak256(abi.encode(ASSIGNMENT_TYPEHASH, assignment));
    }
}
