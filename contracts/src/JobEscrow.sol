// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {
    EIP712Upgradeable
} from "@openzeppelin/contracts-upgradeable/utils/cryptography/EIP712Upgradeable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {FogTypes} from "./FogTypes.sol";
import {IHubRegistry} from "./interfaces/IHubRegistry.sol";

/// @title JobEscrow
/// @notice Buyers lock payment for a job here; it is paid out against EIP-712 receipts signed by the
///         miners the hub assigned, or refunded to the buyer after the deadline. Payment never exceeds
///         the locked amount, a job settles at most once, and settlement and refund exclude each other.
///         Anyone holding the signatures may settle, so a hub cannot withhold a miner's pay.
///         Upgradeable (UUPS) by the DAO's timelock only; storage is ERC-7201 namespaced.
contract JobEscrow is Initializable, UUPSUpgradeable, EIP712Upgradeable {
    using SafeERC20 for IERC20;
    using FogTypes for FogTypes.Receipt;

    enum JobStatus {
        None,
        Open,
        Settled,
        Refunded
    }

    /// @notice One job, packed in three slots.
    struct Job {
        address buyer;
        uint40 deadline;
        uint8 replicas;
        JobStatus status;
        uint16 feeBps;
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

    /// @custom:storage-location erc7201:fog.storage.JobEscrow
    struct EscrowStorage {
        IERC20 token;
        IHubRegistry registry;
        address timelock;
        mapping(bytes32 jobId => Job) jobs;
        mapping(bytes32 receiptHash => bytes32 jobId) settledReceipts;
    }

    // keccak256(abi.encode(uint256(keccak256("fog.storage.JobEscrow")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0x2711e0b462962544445a0813ece86ebc0c361528375aace281e410bf49ed1600;
    uint16 internal constant BPS = 10_000;
    /// @notice Most replicas a job may ask for.
    uint8 public constant MAX_REPLICAS = 16;
    /// @notice Furthest deadline from now.
    uint256 public constant MAX_DEADLINE_HORIZON = 365 days;

    error ZeroAddress();
    error JobExists(bytes32 jobId);
    error HubNotActive(address hub, IHubRegistry.HubState state);
    error InvalidDeadline(uint64 deadline);
    error InvalidReplicas(uint8 replicas);
    error ZeroPayment();
    error PaymentTooLarge(uint256 maxPayment);
    error JobNotOpen(bytes32 jobId, JobStatus status);
    error NotBuyer(address caller);
    error DeadlineNotReached(uint64 deadline);
    error DeadlinePassed(uint64 deadline);
    error WrongReceiptCount(uint256 given, uint8 replicas);
    error ReceiptMismatch(uint256 index);
    error InvalidAssignment(uint256 index);
    error InvalidReceiptSignature(uint256 index);
    error DuplicateMiner(address miner);
    error OutputMismatch(uint256 index);
    error ChargeAboveAssignment(uint256 index, uint256 charged, uint256 maxCharge);
    error InvalidTimes(uint256 index);
    error PaymentExceedsLocked(uint256 payment, uint256 locked);
    error NotTimelock(address caller);

    event JobOpened(
        bytes32 indexed jobId,
        address indexed buyer,
        address indexed hub,
        bytes32 specHash,
        uint64 deadline,
        uint8 replicas,
        uint256 maxPayment,
        uint16 feeBps
    );
    /// @notice One counted receipt, whole, so the chain keeps it as evidence.
    event ReceiptSettled(bytes32 indexed jobId, bytes32 indexed receiptHash, FogTypes.Receipt receipt);
    event JobSettled(bytes32 indexed jobId, uint256 minersPaid, uint256 hubCommission, uint256 buyerRefund);
    event JobRefunded(bytes32 indexed jobId, address indexed buyer, uint256 amount);

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Sets the escrow up. The EIP-712 domain is ("Fog", "1", chainid, this proxy).
    /// @param token_ The FogToken.
    /// @param registry_ The HubRegistry.
    /// @param timelock_ The DAO's timelock, the only upgrade authority.
    function initialize(IERC20 token_, IHubRegistry registry_, address timelock_) external initializer {
        if (address(token_) == address(0) || address(registry_) == address(0) || timelock_ == address(0)) {
            revert ZeroAddress();
        }
        __EIP712_init("Fog", "1");
        EscrowStorage storage $ = _storage();
        $.token = token_;
        $.registry = registry_;
        $.timelock = timelock_;
    }

    // ---------------------------------------------------------------- buyers

    /// @notice Opens a job: locks `maxPayment` tokens from the caller (who must have approved them).
    /// @param salt Buyer-chosen; the job id is keccak256(abi.encode(buyer, salt)), so nobody else can
    ///        take a buyer's job id first.
    /// @param hub The hub (its HubWallet address) that will run the job; must be Active.
    /// @param specHash EIP-712 hash of the JobSpec.
    /// @param deadline Unix time after which the buyer may refund; in the future, within a year.
    /// @param replicas How many distinct miners must agree (1-16).
    /// @param maxPayment Tokens locked: the most the job can cost, commission included.
    /// @return jobId The job's id.
    function open(
        bytes32 salt,
        address hub,
        bytes32 specHash,
        uint64 deadline,
        uint8 replicas,
        uint256 maxPayment
    ) public returns (bytes32 jobId) {
        EscrowStorage storage $ = _storage();
        jobId = jobIdFor(msg.sender, salt);
        Job storage job = $.jobs[jobId];
        if (job.status != JobStatus.None) revert JobExists(jobId);
        if (deadline <= block.timestamp || deadline > block.timestamp + MAX_DEADLINE_HORIZON) {
            revert InvalidDeadline(deadline);
        }
        if (replicas == 0 || replicas > MAX_REPLICAS) revert InvalidReplicas(replicas);
        if (maxPayment == 0) revert ZeroPayment();
        if (maxPayment > type(uint96).max) revert PaymentTooLarge(maxPayment);
        (IHubRegistry.HubState state,, uint16 feeBps) = $.registry.hubTerms(hub);
        if (state != IHubRegistry.HubState.Active) revert HubNotActive(hub, state);

        job.buyer = msg.sender;
        // forge-lint: disable-next-line(unsafe-typecast) checked: within a year of now
        job.deadline = uint40(deadline);
        job.replicas = replicas;
        job.status = JobStatus.Open;
        job.feeBps = feeBps;
        job.hub = hub;
        // forge-lint: disable-next-line(unsafe-typecast) checked against type(uint96).max above
        job.maxPayment = uint96(maxPayment);
        job.specHash = specHash;
        emit JobOpened(jobId, msg.sender, hub, specHash, deadline, replicas, maxPayment, feeBps);
        $.token.safeTransferFrom(msg.sender, address(this), maxPayment);
    }

    /// @notice Opens a job in one transaction with an EIP-2612 permit for `maxPayment`. A permit that was
    ///         already used (e.g. front-run) is tolerated when the allowance is in place.
    /// @param salt See `open`.
    /// @param hub See `open`.
    /// @param specHash See `open`.
    /// @param deadline See `open`.
    /// @param replicas See `open`.
    /// @param maxPayment See `open`.
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
        uint8 replicas,
        uint256 maxPayment,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (bytes32 jobId) {
        try IERC20Permit(address(_storage().token))
            .permit(msg.sender, address(this), maxPayment, permitDeadline, v, r, s) {}
            catch {}
        return open(salt, hub, specHash, deadline, replicas, maxPayment);
    }

    /// @notice Returns the whole locked amount to the buyer once the deadline has passed unsettled.
    ///         Buyer only; needs nobody else.
    /// @param jobId The job.
    function refund(bytes32 jobId) external {
        EscrowStorage storage $ = _storage();
        Job storage job = $.jobs[jobId];
        if (job.status != JobStatus.Open) revert JobNotOpen(jobId, job.status);
        if (msg.sender != job.buyer) revert NotBuyer(msg.sender);
        if (block.timestamp <= job.deadline) revert DeadlineNotReached(job.deadline);
        job.status = JobStatus.Refunded;
        uint256 amount = job.maxPayment;
        emit JobRefunded(jobId, msg.sender, amount);
        $.token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- settlement

    /// @notice Settles a job on `replicas` receipts from distinct assigned miners that agree on the
    ///         output: pays each miner what it charged, the hub its commission, and refunds the rest to the
    ///         buyer. Callable by anyone holding the signatures, until the deadline, unless
    ///         the DAO has blacklisted the hub.
    /// @param jobId The job.
    /// @param receipts Exactly `replicas` signed receipts.
    function settle(bytes32 jobId, SignedReceipt[] calldata receipts) external {
        EscrowStorage storage $ = _storage();
        Job storage job = $.jobs[jobId];
        if (job.status != JobStatus.Open) revert JobNotOpen(jobId, job.status);
        if (block.timestamp > job.deadline) revert DeadlinePassed(job.deadline);
        uint256 count = receipts.length;
        if (count != job.replicas) revert WrongReceiptCount(count, job.replicas);
        address hub = job.hub;
        (IHubRegistry.HubState state, address hubSigner,) = $.registry.hubTerms(hub);
        // A blacklisted hub's assignments no longer count; an exiting or exited hub's still do.
        if (state == IHubRegistry.HubState.Blacklisted || state == IHubRegistry.HubState.None) {
            revert HubNotActive(hub, state);
        }

        job.status = JobStatus.Settled;
        uint256 minersTotal = _countReceipts($, job, jobId, receipts, hubSigner);
        _payOut($.token, job, jobId, receipts, minersTotal);
    }

    /// @dev Verifies every receipt, records its hash as evidence, and returns what the miners charged.
    function _countReceipts(
        EscrowStorage storage $,
        Job storage job,
        bytes32 jobId,
        SignedReceipt[] calldata receipts,
        address hubSigner
    ) private returns (uint256 minersTotal) {
        Expected memory expected = Expected({
            jobId: jobId,
            specHash: job.specHash,
            hub: job.hub,
            hubSigner: hubSigner,
            outputHash: receipts[0].receipt.outputHash
        });
        for (uint256 i; i < receipts.length; ++i) {
            FogTypes.Receipt calldata receipt = receipts[i].receipt;
            _checkReceipt(receipts[i], i, expected);
            for (uint256 j; j < i; ++j) {
                if (receipts[j].receipt.miner == receipt.miner) revert DuplicateMiner(receipt.miner);
            }
            bytes32 receiptHash = receipt.hash();
            $.settledReceipts[receiptHash] = jobId;
            minersTotal += receipt.amountCharged;
            emit ReceiptSettled(jobId, receiptHash, receipt);
        }
    }

    /// @dev Pays miners, the hub's commission and the buyer's change; never more than was locked.
    function _payOut(
        IERC20 token,
        Job storage job,
        bytes32 jobId,
        SignedReceipt[] calldata receipts,
        uint256 minersTotal
    ) private {
        uint256 commission = minersTotal * job.feeBps / BPS;
        uint256 locked = job.maxPayment;
        if (minersTotal + commission > locked) revert PaymentExceedsLocked(minersTotal + commission, locked);
        uint256 buyerRefund = locked - minersTotal - commission;
        emit JobSettled(jobId, minersTotal, commission, buyerRefund);
        for (uint256 i; i < receipts.length; ++i) {
            uint256 amount = receipts[i].receipt.amountCharged;
            if (amount != 0) token.safeTransfer(receipts[i].receipt.miner, amount);
        }
        if (commission != 0) token.safeTransfer(job.hub, commission);
        if (buyerRefund != 0) token.safeTransfer(job.buyer, buyerRefund);
    }

    /// @dev What every receipt of one settlement must match.
    struct Expected {
        bytes32 jobId;
        bytes32 specHash;
        address hub;
        address hubSigner;
        bytes32 outputHash;
    }

    function _checkReceipt(SignedReceipt calldata signed, uint256 index, Expected memory expected)
        private
        view
    {
        FogTypes.Receipt calldata receipt = signed.receipt;
        if (
            receipt.jobId != expected.jobId || receipt.specHash != expected.specHash
                || receipt.hub != expected.hub
        ) {
            revert ReceiptMismatch(index);
        }
        if (receipt.outputHash != expected.outputHash) revert OutputMismatch(index);
        if (receipt.endedAt < receipt.startedAt) revert InvalidTimes(index);
        if (receipt.amountCharged > signed.maxCharge) {
            revert ChargeAboveAssignment(index, receipt.amountCharged, signed.maxCharge);
        }
        (address assigner, ECDSA.RecoverError aErr,) = ECDSA.tryRecover(
            _hashTypedDataV4(receipt.assignmentHash(signed.maxCharge)), signed.assignmentSignature
        );
        if (aErr != ECDSA.RecoverError.NoError || assigner != expected.hubSigner) {
            revert InvalidAssignment(index);
        }
        (address miner, ECDSA.RecoverError rErr,) =
            ECDSA.tryRecover(_hashTypedDataV4(receipt.hash()), signed.receiptSignature);
        if (rErr != ECDSA.RecoverError.NoError || miner != receipt.miner) {
            revert InvalidReceiptSignature(index);
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice The id of the job `buyer` opens with `salt`.
    /// @param buyer The buyer.
    /// @param salt The buyer's salt.
    /// @return The job id.
    function jobIdFor(address buyer, bytes32 salt) public pure returns (bytes32) {
        return keccak256(abi.encode(buyer, salt));
    }

    /// @notice A job's record.
    /// @param jobId The job.
    /// @return The job.
    function getJob(bytes32 jobId) external view returns (Job memory) {
        return _storage().jobs[jobId];
    }

    /// @notice The job a settled receipt belongs to (zero if the receipt never counted).
    /// @param receiptHash The receipt's EIP-712 struct hash.
    /// @return The job id.
    function settledReceiptJob(bytes32 receiptHash) external view returns (bytes32) {
        return _storage().settledReceipts[receiptHash];
    }

    /// @notice EIP-712 struct hash of a receipt, as settlement computes it.
    /// @param receipt The receipt.
    /// @return The struct hash.
    function hashReceipt(FogTypes.Receipt calldata receipt) external pure returns (bytes32) {
        return receipt.hash();
    }

    /// @notice EIP-712 struct hash of a job spec: the `specHash` a buyer opens a job with.
    /// @param spec The job spec.
    /// @return The struct hash.
    function hashJobSpec(FogTypes.JobSpec calldata spec) external pure returns (bytes32) {
        return FogTypes.hash(spec);
    }

    /// @notice EIP-712 struct hash of an assignment, as settlement computes it.
    /// @param assignment The assignment.
    /// @return The struct hash.
    function hashAssignment(FogTypes.Assignment calldata assignment) external pure returns (bytes32) {
        return FogTypes.hash(assignment);
    }

    /// @notice The digest a signer signs for a struct hash under this escrow's domain.
    /// @param structHash An EIP-712 struct hash.
    /// @return The typed-data digest.
    function typedDataDigest(bytes32 structHash) external view returns (bytes32) {
        return _hashTypedDataV4(structHash);
    }

    /// @notice The EIP-712 domain separator of this escrow.
    /// @return The separator.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Token, registry and upgrade authority.
    /// @return token The FogToken.
    /// @return registry The HubRegistry.
    /// @return timelock The DAO timelock.
    function wiring() external view returns (IERC20 token, IHubRegistry registry, address timelock) {
        EscrowStorage storage $ = _storage();
        return ($.token, $.registry, $.timelock);
    }

    function _authorizeUpgrade(address) internal view override {
        if (msg.sender != _storage().timelock) revert NotTimelock(msg.sender);
    }

    function _storage() private pure returns (EscrowStorage storage $) {
        assembly {
            $.slot := STORAGE_SLOT
        }
    }
}
