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
import {IJobEscrow} from "./interfaces/IJobEscrow.sol";

/// @title JobEscrow
/// @notice Buyers lock payment for a job here; it is paid out against EIP-712 receipts signed by the
///         miners the hub assigned, under the signer the job opened with, or refunded to the buyer after
///         the deadline (at once if the hub is blacklisted). Payment never exceeds the locked amount, a job
///         settles at most once, and settlement and refund exclude each other. Anyone holding the
///         signatures may settle, so a hub cannot withhold a miner's pay. Every open and close is booked
///         with the registry, which caps a hub's open escrow and holds its deposit until its jobs close.
///         Upgradeable (UUPS) by the funds timelock only; storage is ERC-7201 namespaced.
contract JobEscrow is Initializable, UUPSUpgradeable, EIP712Upgradeable, IJobEscrow {
    using SafeERC20 for IERC20;
    using FogTypes for FogTypes.Receipt;

    /// @custom:storage-location erc7201:fog.storage.JobEscrow
    struct EscrowStorage {
        IERC20 token;
        IHubRegistry registry;
        address fundsTimelock;
        mapping(bytes32 jobId => Job) jobs;
    }

    // keccak256(abi.encode(uint256(keccak256("fog.storage.JobEscrow")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0x2711e0b462962544445a0813ece86ebc0c361528375aace281e410bf49ed1600;
    uint16 internal constant BPS = 10_000;
    /// @notice Most replicas a job may ask for.
    uint16 public constant MAX_REPLICAS = 16;
    /// @notice Furthest deadline from now.
    uint256 public constant MAX_DEADLINE_HORIZON = 365 days;
    /// @notice Longest run a job may ask for (the spec's own limit).
    uint64 public constant MAX_DURATION = 30 days;
    /// @notice Room a deadline leaves after the run for the hub to settle: no job can be run to its
    ///         end and then refunded because its deadline came first.
    uint256 public constant SETTLEMENT_WINDOW = 30 minutes;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @inheritdoc IJobEscrow
    function initialize(IERC20 token_, IHubRegistry registry_, address fundsTimelock_) external initializer {
        if (address(token_) == address(0) || address(registry_) == address(0) || fundsTimelock_ == address(0))
        {
            revert ZeroAddress();
        }
        __EIP712_init("Fog", "1");
        EscrowStorage storage $ = _storage();
        $.token = token_;
        $.registry = registry_;
        $.fundsTimelock = fundsTimelock_;
    }

    // ---------------------------------------------------------------- buyers

    /// @inheritdoc IJobEscrow
    function open(
        bytes32 salt,
        address hub,
        bytes32 specHash,
        uint64 deadline,
        uint16 replicas,
        uint256 maxPayment,
        uint64 maxDurationSecs
    ) public returns (bytes32 jobId) {
        EscrowStorage storage $ = _storage();
        jobId = jobIdFor(msg.sender, salt);
        Job storage job = $.jobs[jobId];
        if (job.status != JobStatus.None) revert JobExists(jobId);
        if (deadline <= block.timestamp || deadline > block.timestamp + MAX_DEADLINE_HORIZON) {
            revert InvalidDeadline(deadline);
        }
        if (maxDurationSecs == 0 || maxDurationSecs > MAX_DURATION) revert InvalidDuration(maxDurationSecs);
        uint256 earliest = block.timestamp + maxDurationSecs + SETTLEMENT_WINDOW;
        if (deadline < earliest) revert DeadlineTooSoon(deadline, earliest);
        if (replicas == 0 || replicas > MAX_REPLICAS) revert InvalidReplicas(replicas);
        if (maxPayment == 0) revert ZeroPayment();
        if (maxPayment > type(uint96).max) revert PaymentTooLarge(maxPayment);
        // Refuses a hub that is not Active or whose open escrow would pass its cap.
        (uint16 signerVersion, uint16 feeBps) = $.registry.reserve(hub, maxPayment);

        job.buyer = msg.sender;
        // forge-lint: disable-next-line(unsafe-typecast) checked: within a year of now
        job.deadline = uint40(deadline);
        job.replicas = replicas;
        job.status = JobStatus.Open;
        job.feeBps = feeBps;
        job.signerVersion = signerVersion;
        job.hub = hub;
        // forge-lint: disable-next-line(unsafe-typecast) checked against type(uint96).max above
        job.maxPayment = uint96(maxPayment);
        job.specHash = specHash;
        emit JobOpened(jobId, msg.sender, hub, specHash, deadline, replicas, maxPayment, feeBps);
        $.token.safeTransferFrom(msg.sender, address(this), maxPayment);
    }

    /// @inheritdoc IJobEscrow
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
    ) external returns (bytes32 jobId) {
        // A permit that was already used (e.g. front-run) is tolerated when the allowance is in place.
        try IERC20Permit(address(_storage().token))
            .permit(msg.sender, address(this), maxPayment, permitDeadline, v, r, s) {}
            catch {}
        return open(salt, hub, specHash, deadline, replicas, maxPayment, maxDurationSecs);
    }

    /// @inheritdoc IJobEscrow
    function refund(bytes32 jobId) external {
        EscrowStorage storage $ = _storage();
        Job storage job = $.jobs[jobId];
        if (job.status != JobStatus.Open) revert JobNotOpen(jobId, job.status);
        if (msg.sender != job.buyer) revert NotBuyer(msg.sender);
        uint256 amount = job.maxPayment;
        (IHubRegistry.HubState state,) = $.registry.release(job.hub, amount, job.signerVersion);
        if (block.timestamp <= job.deadline && state != IHubRegistry.HubState.Blacklisted) {
            revert DeadlineNotReached(job.deadline);
        }
        job.status = JobStatus.Refunded;
        emit JobRefunded(jobId, msg.sender, amount);
        $.token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- settlement

    /// @inheritdoc IJobEscrow
    function release(bytes32 jobId) external {
        EscrowStorage storage $ = _storage();
        Job storage job = $.jobs[jobId];
        if (job.status != JobStatus.Open) revert JobNotOpen(jobId, job.status);
        uint256 amount = job.maxPayment;
        (, address signer) = $.registry.release(job.hub, amount, job.signerVersion);
        if (msg.sender != signer) revert NotHubSigner(msg.sender, signer);
        job.status = JobStatus.Refunded;
        address buyer = job.buyer;
        emit JobReleased(jobId, buyer, amount);
        $.token.safeTransfer(buyer, amount);
    }

    /// @inheritdoc IJobEscrow
    function settle(bytes32 jobId, SignedReceipt[] calldata receipts) external {
        EscrowStorage storage $ = _storage();
        Job storage job = $.jobs[jobId];
        if (job.status != JobStatus.Open) revert JobNotOpen(jobId, job.status);
        if (block.timestamp > job.deadline) revert DeadlinePassed(job.deadline);
        uint256 count = receipts.length;
        if (count != job.replicas) revert WrongReceiptCount(count, job.replicas);
        address hub = job.hub;
        // The signer the job opened with: rotating the key never voids a miner's right to settle.
        (IHubRegistry.HubState state, address hubSigner) =
            $.registry.release(hub, job.maxPayment, job.signerVersion);
        if (state == IHubRegistry.HubState.None) revert HubNotActive(hub, state);

        job.status = JobStatus.Settled;
        uint256 minersTotal = _countReceipts($, job, jobId, receipts, hubSigner);
        // A blacklisted hub earns nothing more: its commission goes back to the buyer.
        _payOut($.token, job, jobId, receipts, minersTotal, state != IHubRegistry.HubState.Blacklisted);
    }

    /// @dev Verifies every receipt, emits it whole as evidence, commits to the receipts in the job's
    ///      spec-hash slot (which settlement no longer needs), and returns what the miners charged.
    function _countReceipts(
        EscrowStorage storage,
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
        bytes32[] memory hashes = new bytes32[](receipts.length);
        for (uint256 i; i < receipts.length; ++i) {
            FogTypes.Receipt calldata receipt = receipts[i].receipt;
            _checkReceipt(receipts[i], i, expected);
            for (uint256 j; j < i; ++j) {
                if (receipts[j].receipt.miner == receipt.miner) revert DuplicateMiner(receipt.miner);
            }
            bytes32 receiptHash = receipt.hash();
            hashes[i] = receiptHash;
            minersTotal += receipt.amountCharged;
            emit ReceiptSettled(jobId, receiptHash, receipt);
        }
        // One overwritten slot instead of a new slot per receipt: the evidence stays on chain as a
        // commitment the receipts of the ReceiptSettled events open.
        job.specHash = keccak256(abi.encodePacked(hashes));
    }

    /// @dev Pays miners, the hub's commission and the buyer's change; never more than was locked.
    function _payOut(
        IERC20 token,
        Job storage job,
        bytes32 jobId,
        SignedReceipt[] calldata receipts,
        uint256 minersTotal,
        bool hubEarns
    ) private {
        uint256 fee = minersTotal * job.feeBps / BPS;
        uint256 locked = job.maxPayment;
        if (minersTotal + fee > locked) revert PaymentExceedsLocked(minersTotal + fee, locked);
        uint256 commission = hubEarns ? fee : 0;
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

    /// @inheritdoc IJobEscrow
    function jobIdFor(address buyer, bytes32 salt) public pure returns (bytes32) {
        return keccak256(abi.encode(buyer, salt));
    }

    /// @inheritdoc IJobEscrow
    function getJob(bytes32 jobId) external view returns (Job memory) {
        return _storage().jobs[jobId];
    }

    /// @inheritdoc IJobEscrow
    function evidence(bytes32 jobId) external view returns (bytes32) {
        Job storage job = _storage().jobs[jobId];
        return job.status == JobStatus.Settled ? job.specHash : bytes32(0);
    }

    /// @inheritdoc IJobEscrow
    function receiptsCommitment(bytes32[] calldata receiptHashes) external pure returns (bytes32) {
        return keccak256(abi.encodePacked(receiptHashes));
    }

    /// @inheritdoc IJobEscrow
    function hashReceipt(FogTypes.Receipt calldata receipt) external pure returns (bytes32) {
        return receipt.hash();
    }

    /// @inheritdoc IJobEscrow
    function hashJobSpec(FogTypes.JobSpec calldata spec) external pure returns (bytes32) {
        return FogTypes.hash(spec);
    }

    /// @inheritdoc IJobEscrow
    function hashAssignment(FogTypes.Assignment calldata assignment) external pure returns (bytes32) {
        return FogTypes.hash(assignment);
    }

    /// @inheritdoc IJobEscrow
    function typedDataDigest(bytes32 structHash) external view returns (bytes32) {
        return _hashTypedDataV4(structHash);
    }

    /// @inheritdoc IJobEscrow
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IJobEscrow
    function wiring() external view returns (IERC20 token, IHubRegistry registry, address fundsTimelock) {
        EscrowStorage storage $ = _storage();
        return ($.token, $.registry, $.fundsTimelock);
    }

    function _authorizeUpgrade(address) internal view override {
        if (msg.sender != _storage().fundsTimelock) revert NotFundsTimelock(msg.sender);
    }

    function _storage() private pure returns (EscrowStorage storage $) {
        assembly {
            $.slot := STORAGE_SLOT
        }
    }
}
