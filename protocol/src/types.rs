//! The EIP-712 structs that cross the chain boundary.
//!
//! Each struct is declared once, in Solidity syntax, through alloy's `sol!`
//! macro: the same declaration gives the Rust type, its ABI encoding (the
//! canonical byte form) and its EIP-712 type string and hash. The contracts
//! declare the same structs with the same field order; the parity test of the
//! contracts issue compares both sides on a live chain.
//!
//! JSON field names are the Solidity names (camelCase); unknown fields are
//! rejected so that a typo in a hand-written spec is an error, not a silently
//! ignored setting.

alloy::sol! {
    /// One environment variable of the container.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EnvVar {
        string name;
        string value;
    }

    /// An input blob, addressed by the sha256 of its bytes, copied read-only
    /// to `path` (relative to [`crate::INPUT_DIR`]) inside the container.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct InputBlob {
        bytes32 contentHash;
        uint64 size;
        string path;
    }

    /// Resources a job asks for (or a miner offers).
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Resources {
        /// CPU in thousandths of a core.
        uint64 cpuMillicores;
        /// Memory in bytes; swap is never granted.
        uint64 memoryBytes;
        /// Scratch and output disk in bytes.
        uint64 diskBytes;
        /// Whole GPUs.
        uint32 gpuCount;
    }

    /// Where a job may run.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Placement {
        /// Required region, or empty for any.
        string region;
        /// Labels the miner must carry (`key=value`), all of them.
        string[] labels;
    }

    /// What a buyer asks to run. Its EIP-712 hash is the `specHash` that the
    /// escrow, the assignments and the receipts refer to.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct JobSpec {
        /// `name[:tag]@sha256:<digest>` (pulled by digest) or a local image
        /// id `sha256:<id>`.
        string image;
        /// Command and arguments; empty runs the image's own entrypoint.
        string[] command;
        EnvVar[] env;
        InputBlob[] inputs;
        /// Absolute directory inside the container whose contents are the
        /// job's output.
        string outputPath;
        Resources resources;
        /// Wall-clock limit of the run, not counting the image pull.
        uint64 maxDurationSecs;
        /// A [`crate::NetworkPolicy`] value; 0 (none) by default.
        uint8 network;
        Placement placement;
        /// How many distinct miners must run the job and agree (`k`).
        uint16 replicas;
        /// Most the buyer pays in total, in token base units.
        uint256 maxPayment;
        /// Unix time after which the unsettled escrow is refundable.
        uint64 deadline;
    }

    /// The hub's statement that `miner` may run replica work for `jobId`,
    /// charging at most `maxCharge`. Signed by the hub's assignment key.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Assignment {
        bytes32 jobId;
        bytes32 specHash;
        address hub;
        address miner;
        uint256 maxCharge;
    }

    /// A miner's signed proof of execution.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Receipt {
        bytes32 jobId;
        bytes32 specHash;
        address hub;
        address miner;
        /// The id (config digest) of the image actually run.
        bytes32 imageId;
        /// sha256 of the deterministic output archive ([`crate::output`]).
        bytes32 outputHash;
        int32 exitCode;
        uint64 startedAt;
        uint64 endedAt;
        uint64 cpuTimeMs;
        uint64 peakMemoryBytes;
        uint256 amountCharged;
    }
}
