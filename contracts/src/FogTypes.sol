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

    struct EnvVar {
        string name;
        string value;
    }

    struct InputBlob {
        bytes32 contentHash;
        uint64 size;
        string path;
    }

    struct Resources {
        uint64 cpuMillicores;
        uint64 memoryBytes;
        uint64 diskBytes;
        uint32 gpuCount;
    }

    struct Placement {
        string region;
        string[] labels;
    }

    /// @notice What a buyer asks to run; its struct hash is the job's `specHash`.
    struct JobSpec {
        string image;
        string[] command;
        EnvVar[] env;
        InputBlob[] inputs;
        string outputPath;
        Resources resources;
        uint64 maxDurationSecs;
        uint8 network;
        Placement placement;
        uint16 replicas;
        uint256 maxPayment;
        uint64 deadline;
    }

    bytes32 internal constant JOB_SPEC_TYPEHASH = keccak256(
        "JobSpec(string image,string[] command,EnvVar[] env,InputBlob[] inputs,string outputPath,Resources resources,uint64 maxDurationSecs,uint8 network,Placement placement,uint16 replicas,uint256 maxPayment,uint64 deadline)EnvVar(string name,string value)InputBlob(bytes32 contentHash,uint64 size,string path)Placement(string region,string[] labels)Resources(uint64 cpuMillicores,uint64 memoryBytes,uint64 diskBytes,uint32 gpuCount)"
    );
    bytes32 internal constant ENV_VAR_TYPEHASH = keccak256("EnvVar(string name,string value)");
    bytes32 internal constant INPUT_BLOB_TYPEHASH =
        keccak256("InputBlob(bytes32 contentHash,uint64 size,string path)");
    bytes32 internal constant RESOURCES_TYPEHASH =
        keccak256("Resources(uint64 cpuMillicores,uint64 memoryBytes,uint64 diskBytes,uint32 gpuCount)");
    bytes32 internal constant PLACEMENT_TYPEHASH = keccak256("Placement(string region,string[] labels)");

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

    /// @dev EIP-712 struct hash of a job spec: the `specHash` that jobs, assignments and receipts name.
    function hash(JobSpec calldata spec) internal pure returns (bytes32) {
        bytes32[] memory env = new bytes32[](spec.env.length);
        for (uint256 i; i < env.length; ++i) {
            env[i] = keccak256(
                abi.encode(
                    ENV_VAR_TYPEHASH, keccak256(bytes(spec.env[i].name)), keccak256(bytes(spec.env[i].value))
                )
            );
        }
        bytes32[] memory inputs = new bytes32[](spec.inputs.length);
        for (uint256 i; i < inputs.length; ++i) {
            InputBlob calldata b = spec.inputs[i];
            inputs[i] =
                keccak256(abi.encode(INPUT_BLOB_TYPEHASH, b.contentHash, b.size, keccak256(bytes(b.path))));
        }
        bytes32 placement = keccak256(
            abi.encode(
                PLACEMENT_TYPEHASH,
                keccak256(bytes(spec.placement.region)),
                _hashStrings(spec.placement.labels)
            )
        );
        bytes memory head = abi.encode(
            JOB_SPEC_TYPEHASH,
            keccak256(bytes(spec.image)),
            _hashStrings(spec.command),
            keccak256(abi.encodePacked(env)),
            keccak256(abi.encodePacked(inputs)),
            keccak256(bytes(spec.outputPath)),
            keccak256(abi.encode(RESOURCES_TYPEHASH, spec.resources))
        );
        return keccak256(
            abi.encodePacked(
                head,
                abi.encode(
                    spec.maxDurationSecs,
                    spec.network,
                    placement,
                    spec.replicas,
                    spec.maxPayment,
                    spec.deadline
                )
            )
        );
    }

    function _hashStrings(string[] calldata items) private pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](items.length);
        for (uint256 i; i < items.length; ++i) {
            hashes[i] = keccak256(bytes(items[i]));
        }
        return keccak256(abi.encodePacked(hashes));
    }
}
