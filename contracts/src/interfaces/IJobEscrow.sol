// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {FogTypes} from "../FogTypes.sol";
import {IFogErrors, IReceiptErrors} from "./IFogErrors.sol";
import {IHubRegistry} from "./IHubRegistry.sol";

/// @title IJobEscrow
/// @notice Buyers lock payment for a job; it is paid out against EIP-712 receipts signed by the miners
///         the hub assigned (under the hub signer the job opened with), or refunded to the buyer after
///         the deadline, or at once if the hub is blacklisted. Payment never exceeds the locked amount,
///         a job settles at most once, and settlement and refund exclude each other.
interface IJobEscrow is IFogErrors, IReceiptErrors {
    /// @notice Where a job is.
    enum JobStatus {
        None,
        Open,
        Settled,
        Refunded
    }

    /// @notice One job, packed in three slots.
    /// @param buyer Who locked the payment and gets the change or the refund.
    /// @param deadline Settlement is possible until then, refund after.
    /// @param replicas How many distinct assigned miners must agree.
    /// @param status Where the job is.
    /// @param feeBps The hub's commission, snapshotted at open.
    /// @param signerVersion The hub's assignment signer, snapshotted at open.
    /// @param hub The hub's id (its HubWallet address).
    /// @param maxPayment Tokens locked.
    /// @param specHash EIP-712 hash of the JobSpec while the job is open; once it is settled, the
    ///        evidence: keccak256 of the settling receipts' hashes, in the order they were given
    ///        (see `evidence`).
    struct Job {
        address buyer;
        uint40 deadline;
        uint16 replicas;
        JobStatus status;
        uint16 feeBps;
        uint16 signerVersion;
        address hub;
        uint96 maxPayment;
        bytes32 specHash;
    }

    /// @notice A receipt with the two signatures that make it count.
    /// @param receipt The miner's receipt.
    /// @param maxCharge The price cap of the hub's assignment to this miner.
    /// @param assignmentSignature The hub signer's signature of the Assignment.
    /// @param receiptSignature The miner's signature of the Receipt.
    struct SignedReceipt {
        FogTypes.Receipt receipt;
        uint256 maxCharge;
        bytes assignmentSignature;
        bytes receiptSignature;
    }

    /// @notice The job id is taken.
    error JobExists(bytes32 jobId);
    /// @notice The hub is not in a state for this (unknown, or not Active when opening).
    error HubNotActive(address hub, IHubRegistry.HubState state);
    /// @notice The deadline is in the past or more than a year away.
    error InvalidDeadline(uint64 deadline);
    /// @notice The deadline leaves no room to run the job and settle it: it must be at least `earliest`.
    error DeadlineTooSoon(uint64 deadline, uint256 earliest);
    /// @notice The job's maximum duration is zero or above 30 days.
    error InvalidDuration(uint64 maxDurationSecs);
    /// @notice Nothing locked.
    error ZeroPayment();
    /// @notice The payment does not fit 96 bits.
    error PaymentTooLarge(uint256 maxPayment);
    /// @notice The job is not open.
    error JobNotOpen(bytes32 jobId, JobStatus status);
    /// @notice Only the buyer refunds.
    error NotBuyer(address caller);
    /// @notice The refund must wait for the deadline (the hub is not blacklisted).
    error DeadlineNotReached(uint64 deadline);
    /// @notice Settlement is over: the deadline passed.
    error DeadlinePassed(uint64 deadline);
    /// @notice Miners and commission would exceed what was locked.
    error PaymentExceedsLocked(uint256 payment, uint256 locked);
    /// @notice Only the funds timelock upgrades the escrow.
    error NotFundsTimelock(address caller);
    /// @notice Only the job's hub signer (the one it opened with) releases it.
    error NotHubSigner(address caller, address signer);

    /// @notice A job opened.
    event JobOpened(
        bytes32 indexed jobId,
        address indexed buyer,
        address indexed hub,
        bytes32 specHash,
        uint64 deadline,
        uint16 replicas,
        uint256 maxPayment,
        uint16 feeBps
    );
    /// @notice One counted receipt, whole, so the chain keeps it as evidence (`evidence` commits to it).
    event ReceiptSettled(bytes32 indexed jobId, bytes32 indexed receiptHash, FogTypes.Receipt receipt);
    /// @notice A job settled: what the miners got, the hub's commission, the buyer's change.
    event JobSettled(bytes32 indexed jobId, uint256 minersPaid, uint256 hubCommission, uint256 buyerRefund);
    /// @notice A job was refunded in full to its buyer.
    event JobRefunded(bytes32 indexed jobId, address indexed buyer, uint256 amount);
    /// @notice The hub gave a job up (cancelled before it ran, or failed because of the job itself):
    ///         its buyer got everything back at once.
    event JobReleased(bytes32 indexed jobId, address indexed buyer, uint256 amount);

    /// @notice Sets the escrow up. The EIP-712 domain is ("Fog", "1", chainid, this proxy).
    /// @param token_ The FogToken.
    /// @param registry_ The HubRegistry.
    /// @param fundsTimelock_ The funds timelock, the only upgrade authority.
    function initialize(IERC20 token_, IHubRegistry registry_, address fundsTimelock_) external;

    /// @notice Opens a job: locks `maxPayment` tokens from the caller (who must have approved them).
    /// @param salt Buyer-chosen; the job id is keccak256(abi.encode(buyer, salt)).
    /// @param hub The hub (its HubWallet address) that will run the job; must be Active, and its open
    ///        escrow stays within its cap.
    /// @param specHash EIP-712 hash of the JobSpec.
    /// @param deadline Unix time after which the buyer may refund; at least `maxDurationSecs` plus the
    ///        settlement window from now, within a year.
    /// @param replicas How many distinct miners must agree (1-16).
    /// @param maxPayment Tokens locked: the most the job can cost, commission included.
    /// @param maxDurationSecs The spec's maximum duration (the hub checks it matches the spec).
    /// @return jobId The job's id.
    function open(
        bytes32 salt,
        address hub,
        bytes32 specHash,
        uint64 deadline,
        uint16 replicas,
        uint256 maxPayment,
        uint64 maxDurationSecs
    ) external returns (bytes32 jobId);

    /// @notice Opens a job in one transaction with an EIP-2612 permit for `maxPayment`.
    /// @param salt See `open`.
    /// @param hub See `open`.
    /// @param specHash See `open`.
    /// @param deadline See `open`.
    /// @param replicas See `open`.
    /// @param maxPayment See `open`.
    /// @param maxDurationSecs See `open`.
    /// @param permitDeadline The permit's deadline.
    /// @param v The permit signature's v.
    /// @param r The permit signature's r.
    /// @param s The permit signature's s.
    /// @return jobId The job's id.
    function openWithPermit(
        bytes32 salt,
        address hub,
        bytes32 specHash,
        uint64 deadline,
        uint16 replicas,
        uint256 maxPayment,
        uint64 maxDurationSecs,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (bytes32 jobId);

    /// @notice Returns the whole locked amount to the buyer: after the deadline, or at once when the hub
    ///         has been blacklisted. Buyer only; needs nobody else.
    /// @param jobId The job.
    function refund(bytes32 jobId) external;

    /// @notice The hub gives a job up before the deadline: the buyer gets the whole locked amount back
    ///         at once. Only the hub signer the job opened with. A hub that releases a job whose
    ///         miners already ran it withholds their pay: their signed assignments and receipts are the
    ///         evidence for a blacklist vote.
    /// @param jobId The job.
    function release(bytes32 jobId) external;

    /// @notice Settles a job on `replicas` receipts from distinct miners, assigned under the signer the
    ///         job opened with, that agree on the output: pays each miner what it charged, the hub its
    ///         commission (the buyer, if the hub was blacklisted), and refunds the rest to the buyer.
    ///         Callable by anyone holding the signatures, until the deadline.
    /// @param jobId The job.
    /// @param receipts Exactly `replicas` signed receipts.
    function settle(bytes32 jobId, SignedReceipt[] calldata receipts) external;

    /// @notice The id of the job `buyer` opens with `salt`.
    /// @param buyer The buyer.
    /// @param salt The buyer's salt.
    /// @return The job id.
    function jobIdFor(address buyer, bytes32 salt) external pure returns (bytes32);

    /// @notice A job's record.
    /// @param jobId The job.
    /// @return The job.
    function getJob(bytes32 jobId) external view returns (Job memory);

    /// @notice The evidence a settled job keeps on chain: keccak256 of the hashes of the receipts that
    ///         settled it, in the order the settlement gave them (each receipt is whole in a
    ///         ReceiptSettled event); zero while the job is not settled.
    /// @param jobId The job.
    /// @return The commitment.
    function evidence(bytes32 jobId) external view returns (bytes32);

    /// @notice The commitment `evidence` keeps for receipts with these hashes, in this order.
    /// @param receiptHashes The receipts' EIP-712 struct hashes.
    /// @return keccak256 of their concatenation.
    function receiptsCommitment(bytes32[] calldata receiptHashes) external pure returns (bytes32);

    /// @notice EIP-712 struct hash of a receipt, as settlement computes it.
    /// @param receipt The receipt.
    /// @return The struct hash.
    function hashReceipt(FogTypes.Receipt calldata receipt) external pure returns (bytes32);

    /// @notice EIP-712 struct hash of a job spec: the `specHash` a buyer opens a job with.
    /// @param spec The job spec.
    /// @return The struct hash.
    function hashJobSpec(FogTypes.JobSpec calldata spec) external pure returns (bytes32);

    /// @notice EIP-712 struct hash of an assignment, as settlement computes it.
    /// @param assignment The assignment.
    /// @return The struct hash.
    function hashAssignment(FogTypes.Assignment calldata assignment) external pure returns (bytes32);

    /// @notice The digest a signer signs for a struct hash under this escrow's domain.
    /// @param structHash An EIP-712 struct hash.
    /// @return The typed-data digest.
    function typedDataDigest(bytes32 structHash) external view returns (bytes32);

    /// @notice The EIP-712 domain separator of this escrow.
    /// @return The separator.
    function domainSeparator() external view returns (bytes32);

    /// @notice Token, registry and upgrade authority.
    /// @return token The FogToken.
    /// @return registry The HubRegistry.
    /// @return fundsTimelock The upgrade authority.
    function wiring() external view returns (IERC20 token, IHubRegistry registry, address fundsTimelock);
}
