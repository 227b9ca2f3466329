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
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {FogTypes} from "./FogTypes.sol";
import {IBatchSettlement} from "./interfaces/IBatchSettlement.sol";
import {IHubRegistry} from "./interfaces/IHubRegistry.sol";
import {IJobEscrow} from "./interfaces/IJobEscrow.sol";

/// @title BatchSettlement
/// @notice Many jobs per transaction: buyers fund an account once and sign a JobAuth per job; a hub
///         commits epochs (a Merkle root of jobs and each touched account's net change) that apply at
///         once, backed by the hub's bond in this contract; anyone may challenge an account's change and
///         the hub must reveal every job behind it with all signatures, or pay from its bond. Miners claim
///         uncommitted jobs themselves. See IBatchSettlement and docs/settlement.md.
///         Upgradeable (UUPS) by the funds timelock only; storage is ERC-7201 namespaced.
contract BatchSettlement is Initializable, UUPSUpgradeable, EIP712Upgradeable, IBatchSettlement {
    using SafeERC20 for IERC20;
    using FogTypes for FogTypes.Receipt;

    /// @custom:storage-location erc7201:fog.storage.BatchSettlement
    struct BatchStorage {
        IERC20 token;
        IHubRegistry registry;
        IJobEscrow escrow;
        address fundsTimelock;
        Params params;
        mapping(address account => AccountSlot) accounts;
        mapping(address account => uint96) withdrawals;
        mapping(address hub => HubBook) hubs;
        mapping(address hub => mapping(uint32 index => bytes32)) epochs;
        mapping(bytes32 key => Challenge) challenges;
        mapping(bytes32 jobId => Claim) claims;
        mapping(bytes32 key => bool) proven;
    }

    // keccak256(abi.encode(uint256(keccak256("fog.storage.BatchSettlement")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0x065f79e0c79e15a1ce80f09927c87f72799f56bd5b9e2ea3243239aa85a08f00;
    uint16 internal constant BPS = 10_000;
    uint16 internal constant MAX_REPLICAS = 16;
    uint256 internal constant AMOUNT_BITS = 95;
    uint256 internal constant AMOUNT_MASK = (uint256(1) << AMOUNT_BITS) - 1;
    /// @notice EIP-712 type of a buyer's JobAuth.
    bytes32 public constant JOB_AUTH_TYPEHASH = keccak256(
        "JobAuth(bytes32 salt,bytes32 specHash,address hub,uint256 maxPayment,uint64 deadline,uint16 replicas,uint16 maxFeeBps)"
    );
    /// @notice Domain tag of batched job ids: never equal to a per-job escrow id (a different preimage).
    bytes32 public constant BATCH_JOB_TAG = keccak256("fog.batch.job");

    /// @dev An account's one slot; the amount of a withdrawal request lives apart (it is rare).
    struct AccountSlot {
        uint96 balance;
        uint96 earned;
        uint40 withdrawableAt;
    }

    /// @dev What one verified job amounts to.
    struct Checked {
        bytes32 jobId;
        uint256 minersTotal;
        uint256 total;
        bytes32 receiptsCommitment;
        bytes32 leaf;
    }

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @inheritdoc IBatchSettlement
    function initialize(
        IERC20 token_,
        IHubRegistry registry_,
        IJobEscrow escrow_,
        address fundsTimelock_,
        Params calldata params_
    ) external initializer {
        if (
            address(token_) == address(0) || address(registry_) == address(0)
                || address(escrow_) == address(0) || fundsTimelock_ == address(0)
        ) revert ZeroAddress();
        _checkParams(params_);
        __EIP712_init("Fog Batch", "1");
        BatchStorage storage $ = _storage();
        $.token = token_;
        $.registry = registry_;
        $.escrow = escrow_;
        $.fundsTimelock = fundsTimelock_;
        $.params = params_;
    }

    function _checkParams(Params calldata p) private pure {
        if (p.challengeWindow == 0 || p.responseWindow == 0 || p.claimPeriod == 0 || p.proofWindow == 0) {
            revert InvalidParams("every window must be longer than zero");
        }
        if (p.authHorizon == 0) revert InvalidParams("authHorizon must be longer than zero");
        // A forced claim can only be contested with an answer given within the challenge period.
        if (p.proofWindow < uint256(p.challengeWindow) + p.responseWindow) {
            revert InvalidParams("proofWindow must cover challengeWindow + responseWindow");
        }
        // A buyer may not leave before every job it signed can be claimed and contested.
        if (p.withdrawalDelay < uint256(p.authHorizon) + p.claimPeriod + p.proofWindow) {
            revert InvalidParams("withdrawalDelay must cover authHorizon + claimPeriod + proofWindow");
        }
        if (p.rewardBps > BPS) revert InvalidParams("rewardBps must be at most 10000");
        if (p.challengeStake == 0) revert InvalidParams("challengeStake must be positive");
    }

    // ---------------------------------------------------------------- accounts

    /// @inheritdoc IBatchSettlement
    function deposit(address account, uint256 amount) public {
        if (account == address(0)) revert ZeroAddress();
        BatchStorage storage $ = _storage();
        _creditBalance($, account, _amount(amount));
        emit Deposited(account, msg.sender, amount);
        $.token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IBatchSettlement
    function depositWithPermit(uint256 amount, uint256 permitDeadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        // A permit already used (e.g. front-run) is tolerated when the allowance is in place.
        try IERC20Permit(address(_storage().token))
            .permit(msg.sender, address(this), amount, permitDeadline, v, r, s) {}
            catch {}
        deposit(msg.sender, amount);
    }

    /// @inheritdoc IBatchSettlement
    function requestWithdrawal(address account, uint256 amount) external {
        BatchStorage storage $ = _storage();
        _checkOwner($, account);
        AccountSlot storage a = $.accounts[account];
        if (amount == 0) {
            $.withdrawals[account] = 0;
            a.withdrawableAt = 0;
            emit WithdrawalRequested(account, 0, 0);
            return;
        }
        $.withdrawals[account] = _amount(amount);
        uint256 ripeAt = block.timestamp + $.params.withdrawalDelay;
        // forge-lint: disable-next-line(unsafe-typecast) block time plus a uint32 fits in 40 bits
        a.withdrawableAt = uint40(ripeAt);
        emit WithdrawalRequested(account, amount, ripeAt);
    }

    /// @inheritdoc IBatchSettlement
    function withdraw(address account) external {
        BatchStorage storage $ = _storage();
        _checkOwner($, account);
        AccountSlot storage a = $.accounts[account];
        if (a.withdrawableAt == 0 || block.timestamp < a.withdrawableAt) {
            revert WithdrawalNotReady(account, a.withdrawableAt);
        }
        HubBook storage book = $.hubs[account];
        if (book.frozen) revert HubFrozen(account);
        uint256 until = uint256(book.lastCommitAt) + $.params.challengeWindow + $.params.responseWindow;
        if (book.openChallenges != 0 || (book.epochs != 0 && block.timestamp < until)) {
            revert BondLocked(account, until);
        }
        uint96 asked = $.withdrawals[account];
        uint96 amount = asked < a.balance ? asked : a.balance;
        a.balance -= amount;
        $.withdrawals[account] = 0;
        a.withdrawableAt = 0;
        emit Withdrawn(account, msg.sender, amount);
        if (amount != 0) $.token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IBatchSettlement
    function withdrawEarnings(address account, uint256 amount) external {
        BatchStorage storage $ = _storage();
        _checkOwner($, account);
        if ($.hubs[account].frozen) revert HubFrozen(account);
        uint96 taken = _takeEarnings($, account, amount);
        emit EarningsWithdrawn(account, msg.sender, taken);
        $.token.safeTransfer(msg.sender, taken);
    }

    /// @inheritdoc IBatchSettlement
    function spendEarnings(address account, uint256 amount) external {
        BatchStorage storage $ = _storage();
        _checkOwner($, account);
        uint96 taken = _takeEarnings($, account, amount);
        _creditBalance($, account, taken);
        emit EarningsSpent(account, taken);
    }

    function _takeEarnings(BatchStorage storage $, address account, uint256 amount) private returns (uint96) {
        uint96 taken = _amount(amount);
        AccountSlot storage a = $.accounts[account];
        if (a.earned < taken) revert InsufficientEarnings(account, a.earned, taken);
        a.earned -= taken;
        return taken;
    }

    /// @dev The caller owns `account`: it is the caller, or a hub the caller operates.
    function _checkOwner(BatchStorage storage $, address account) private view {
        if (account == msg.sender) return;
        address operator = $.registry.operatorOf(account);
        if (operator != msg.sender) revert NotHubOperator(msg.sender, operator);
    }

    // ---------------------------------------------------------------- epochs

    /// @inheritdoc IBatchSettlement
    function commitEpoch(address hub, bytes32 root, uint32 jobCount, uint256[] calldata entries)
        external
        returns (uint32 index)
    {
        BatchStorage storage $ = _storage();
        HubBook storage book = _checkCommitter($, hub);
        _checkBond($, hub, _applyLedger($, entries));

        index = book.epochs;
        bytes32 ledgerHash = keccak256(abi.encodePacked(entries));
        // forge-lint: disable-next-line(unsafe-typecast) block time fits in 40 bits until the year 36812
        uint40 committedAt = uint40(block.timestamp);
        $.epochs[hub][index] = keccak256(abi.encode(root, ledgerHash, committedAt));
        book.epochs = index + 1;
        book.lastCommitAt = committedAt;
        emit EpochCommitted(hub, index, root, ledgerHash, committedAt, jobCount, entries);
    }

    /// @dev The caller may commit for `hub` now: its current signer, Active, not frozen, and the
    ///      previous epoch closed. One epoch open to challenges at a time: the bond covers that one.
    function _checkCommitter(BatchStorage storage $, address hub)
        private
        view
        returns (HubBook storage book)
    {
        (IHubRegistry.HubState state, address signer,) = $.registry.hubTerms(hub);
        if (state != IHubRegistry.HubState.Active) revert HubNotActive(hub, state);
        if (msg.sender != signer) revert NotHubSigner(msg.sender, signer);
        book = $.hubs[hub];
        if (book.frozen) revert HubFrozen(hub);
        if (book.epochs != 0) {
            uint256 until = uint256(book.lastCommitAt) + $.params.challengeWindow + $.params.responseWindow;
            if (book.openChallenges != 0 || block.timestamp < until) revert EpochStillOpen(hub, until);
        }
    }

    /// @dev The hub's bond covers every debit of the epoch and the challengers' rewards on them.
    function _checkBond(BatchStorage storage $, address hub, uint256 debits) private view {
        uint256 required = debits * (BPS + $.params.rewardBps) / BPS;
        uint256 bond = $.accounts[hub].balance;
        if (bond < required) revert BondTooSmall(hub, bond, required);
    }

    /// @dev Applies a ledger (accounts strictly increasing) and returns its total debit; reverts unless
    ///      credits equal debits.
    function _applyLedger(BatchStorage storage $, uint256[] calldata entries)
        private
        returns (uint256 debits)
    {
        uint256 credits;
        address previous;
        for (uint256 i; i < entries.length; ++i) {
            (address account, bool debit, uint96 amount) = _unpack(entries[i]);
            if (account <= previous || amount == 0) revert InvalidEntry(i);
            previous = account;
            AccountSlot storage a = $.accounts[account];
            if (debit) {
                uint96 balance = a.balance;
                if (balance < amount) revert InsufficientBalance(account, balance, amount);
                a.balance = balance - amount;
                debits += amount;
            } else {
                a.earned += amount;
                credits += amount;
            }
        }
        if (credits != debits) revert LedgerUnbalanced(credits, debits);
    }

    // ---------------------------------------------------------------- challenges

    /// @inheritdoc IBatchSettlement
    function challenge(EpochRef calldata epoch, uint256[] calldata entries, uint256 position) external {
        BatchStorage storage $ = _storage();
        _checkEpoch($, epoch);
        if (keccak256(abi.encodePacked(entries)) != epoch.ledgerHash) {
            revert UnknownEpoch(epoch.hub, epoch.index);
        }
        uint256 closesAt = uint256(epoch.committedAt) + $.params.challengeWindow;
        if (block.timestamp > closesAt) revert ChallengeWindowClosed(closesAt);
        (address account, bool debit, uint96 amount) = _unpack(entries[position]);
        if (account == epoch.hub) revert HubEntry();
        Challenge storage c = $.challenges[_challengeKey(epoch.hub, epoch.index, account)];
        if (c.status != ChallengeStatus.None) revert AlreadyChallenged(account);
        uint96 stake = $.params.challengeStake;
        AccountSlot storage challenger = $.accounts[msg.sender];
        if (challenger.balance < stake) revert InsufficientBalance(msg.sender, challenger.balance, stake);
        challenger.balance -= stake;
        // forge-lint: disable-next-line(unsafe-typecast) block time plus a uint32 fits in 40 bits
        uint40 answerBy = uint40(block.timestamp + $.params.responseWindow);
        c.challenger = msg.sender;
        c.answerBy = answerBy;
        c.status = ChallengeStatus.Open;
        c.credit = !debit;
        c.amount = amount;
        $.hubs[epoch.hub].openChallenges += 1;
        emit Challenged(epoch.hub, epoch.index, account, msg.sender, answerBy);
    }

    /// @inheritdoc IBatchSettlement
    function answer(EpochRef calldata epoch, address account, BatchJob[] calldata jobs) external {
        BatchStorage storage $ = _storage();
        _checkEpoch($, epoch);
        Challenge storage c = $.challenges[_challengeKey(epoch.hub, epoch.index, account)];
        if (c.status != ChallengeStatus.Open) revert NoOpenChallenge(account);
        if (block.timestamp > c.answerBy) revert AnswerTooLate(c.answerBy);
        bytes32 separator = $.escrow.domainSeparator();
        uint256 paid;
        uint256 earned;
        bytes32[] memory ids = new bytes32[](jobs.length);
        for (uint256 i; i < jobs.length; ++i) {
            BatchJob calldata job = jobs[i];
            Checked memory k = _verify($, job, epoch.hub, job.feeBps, separator);
            if (i != 0 && k.jobId <= ids[i - 1]) revert JobsOutOfOrder(i);
            ids[i] = k.jobId;
            if (job.auth.deadline <= epoch.committedAt) {
                revert LateInclusion(k.jobId, job.auth.deadline, epoch.committedAt);
            }
            if (!MerkleProof.verifyCalldata(job.proof, epoch.root, k.leaf)) revert NotInEpoch(k.jobId);
            if (job.buyer == account) paid += k.total;
            for (uint256 j; j < job.receipts.length; ++j) {
                if (job.receipts[j].receipt.miner == account) {
                    earned += job.receipts[j].receipt.amountCharged;
                }
            }
            emit JobRevealed(epoch.hub, epoch.index, k.jobId, k.leaf, k.receiptsCommitment);
        }
        // The account's net change in the epoch, as the revealed jobs make it.
        bool credit = earned > paid;
        uint256 net = credit ? earned - paid : paid - earned;
        if (net != c.amount || (net != 0 && credit != c.credit)) revert AnswerMismatch(net, c.amount);
        c.status = ChallengeStatus.Answered;
        c.answeredJobs = keccak256(abi.encodePacked(ids));
        $.hubs[epoch.hub].openChallenges -= 1;
        // The stake pays for the hub's trouble.
        _creditEarned($, epoch.hub, $.params.challengeStake);
        emit ChallengeAnswered(epoch.hub, epoch.index, account, jobs.length);
    }

    /// @inheritdoc IBatchSettlement
    function resolve(EpochRef calldata epoch, address account) external {
        BatchStorage storage $ = _storage();
        _checkEpoch($, epoch);
        Challenge storage c = $.challenges[_challengeKey(epoch.hub, epoch.index, account)];
        if (c.status != ChallengeStatus.Open) revert NoOpenChallenge(account);
        if (block.timestamp <= c.answerBy) revert AnswerPeriodRunning(c.answerBy);
        c.status = ChallengeStatus.Upheld;
        $.hubs[epoch.hub].openChallenges -= 1;
        _creditBalance($, c.challenger, $.params.challengeStake);
        emit ChallengeUpheld(epoch.hub, epoch.index, account);
        // A debit the hub cannot back is repaid whole; a shorted miner is paid through its forced
        // claims, which the hub's bond then pays (see contestClaim).
        uint256 compensation = c.credit ? 0 : c.amount;
        _fraud(
            $, epoch.hub, account, compensation, c.challenger, uint256(c.amount) * $.params.rewardBps / BPS
        );
    }

    /// @inheritdoc IBatchSettlement
    function proveDuplicate(
        EpochRef calldata first,
        Leaf calldata a,
        bytes32[] calldata proofA,
        EpochRef calldata second,
        Leaf calldata b,
        bytes32[] calldata proofB
    ) external {
        BatchStorage storage $ = _storage();
        _checkEpoch($, first);
        _checkEpoch($, second);
        bytes32 leafA = leafHash(a);
        bytes32 leafB = leafHash(b);
        if (first.hub != second.hub || a.jobId != b.jobId || (first.index == second.index && leafA == leafB))
        {
            revert NotDuplicate();
        }
        if (!MerkleProof.verifyCalldata(proofA, first.root, leafA)) revert NotInEpoch(a.jobId);
        if (!MerkleProof.verifyCalldata(proofB, second.root, leafB)) revert NotInEpoch(b.jobId);
        _proven($, second.hub, b.jobId);
        _fraud($, second.hub, b.buyer, b.total, msg.sender, uint256(b.total) * $.params.rewardBps / BPS);
    }

    /// @inheritdoc IBatchSettlement
    function proveLate(EpochRef calldata epoch, Leaf calldata leaf, bytes32[] calldata proof) external {
        BatchStorage storage $ = _storage();
        _checkEpoch($, epoch);
        if (leaf.deadline > epoch.committedAt) revert NotLate(leaf.jobId);
        if (!MerkleProof.verifyCalldata(proof, epoch.root, leafHash(leaf))) revert NotInEpoch(leaf.jobId);
        _proven($, epoch.hub, leaf.jobId);
        _fraud(
            $, epoch.hub, leaf.buyer, leaf.total, msg.sender, uint256(leaf.total) * $.params.rewardBps / BPS
        );
    }

    /// @dev One compensation per job and hub, however many proofs name it.
    function _proven(BatchStorage storage $, address hub, bytes32 jobId) private {
        bytes32 key = keccak256(abi.encode(hub, jobId));
        if ($.proven[key]) revert AlreadyProven(jobId);
        $.proven[key] = true;
    }

    /// @dev Freezes the hub and pays the victim, then the challenger, from its bond, as far as it goes.
    function _fraud(
        BatchStorage storage $,
        address hub,
        address victim,
        uint256 compensation,
        address challenger,
        uint256 reward
    ) private {
        $.hubs[hub].frozen = true;
        AccountSlot storage bond = $.accounts[hub];
        uint96 left = bond.balance;
        // forge-lint: disable-next-line(unsafe-typecast) below `left`, a uint96, when cast
        uint96 toVictim = compensation < left ? uint96(compensation) : left;
        left -= toVictim;
        // forge-lint: disable-next-line(unsafe-typecast) below `left`, a uint96, when cast
        uint96 toChallenger = reward < left ? uint96(reward) : left;
        left -= toChallenger;
        bond.balance = left;
        // A repaid debit goes back where it came from; a reward is earned.
        if (toVictim != 0) _creditBalance($, victim, toVictim);
        if (toChallenger != 0) _creditEarned($, challenger, toChallenger);
        emit HubFraud(hub, victim, challenger, toVictim, toChallenger);
    }

    // ---------------------------------------------------------------- forced claims

    /// @inheritdoc IBatchSettlement
    function forceClaim(BatchJob calldata job) external returns (bytes32 jobId) {
        BatchStorage storage $ = _storage();
        // No commission on a job the hub did not settle.
        Checked memory k = _verify($, job, job.auth.hub, 0, $.escrow.domainSeparator());
        jobId = k.jobId;
        uint256 opensAt = uint256(job.auth.deadline) + 1;
        uint256 closesAt = uint256(job.auth.deadline) + $.params.claimPeriod;
        if (block.timestamp < opensAt || block.timestamp > closesAt) {
            revert ClaimOutsidePeriod(jobId, opensAt, closesAt);
        }
        Claim storage claim = $.claims[jobId];
        if (claim.status != ClaimStatus.None) revert AlreadyClaimed(jobId);
        uint256 n = job.receipts.length;
        address[] memory miners = new address[](n);
        uint256[] memory amounts = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            miners[i] = job.receipts[i].receipt.miner;
            amounts[i] = job.receipts[i].receipt.amountCharged;
        }
        // forge-lint: disable-next-line(unsafe-typecast) block time plus a uint32 fits in 40 bits
        uint40 payableAt = uint40(block.timestamp + $.params.proofWindow);
        claim.hub = job.auth.hub;
        claim.buyer = job.buyer;
        claim.payableAt = payableAt;
        claim.status = ClaimStatus.Pending;
        // forge-lint: disable-next-line(unsafe-typecast) at most the JobAuth's maxPayment, checked to fit
        claim.amount = uint96(k.minersTotal);
        claim.payout = keccak256(abi.encode(miners, amounts));
        emit ClaimOpened(jobId, job.auth.hub, job.buyer, k.minersTotal, payableAt, k.receiptsCommitment);
    }

    /// @inheritdoc IBatchSettlement
    function contestClaim(bytes32 jobId, InclusionProof calldata p) external {
        BatchStorage storage $ = _storage();
        Claim storage claim = $.claims[jobId];
        if (claim.status != ClaimStatus.Pending || claim.hubPays) revert ClaimNotPayable(jobId);
        if (keccak256(abi.encode(p.miners, p.amounts)) != claim.payout) revert PayoutMismatch(jobId);
        if (p.answered.length != p.miners.length) revert PayoutMismatch(jobId);
        if (p.epoch.hub != claim.hub) revert WrongHub(jobId, p.epoch.hub);
        _checkEpoch($, p.epoch);
        if (p.leaf.jobId != jobId || !MerkleProof.verifyCalldata(p.proof, p.epoch.root, leafHash(p.leaf))) {
            revert NotInEpoch(jobId);
        }
        // The miners were paid in that epoch unless one of them showed its credit there was short.
        for (uint256 i; i < p.miners.length; ++i) {
            if (_shorted($, p.epoch, p.miners[i], p.answered[i], jobId)) {
                claim.hubPays = true;
                emit ClaimRedirected(jobId, p.epoch.hub, p.epoch.index, p.miners[i]);
                return;
            }
        }
        claim.status = ClaimStatus.Void;
        emit ClaimVoided(jobId, p.epoch.hub, p.epoch.index);
    }

    /// @dev Whether `miner`'s credit in the epoch was shown short of `jobId`: its challenge was upheld
    ///      or is still open, or was answered without the job.
    function _shorted(
        BatchStorage storage $,
        EpochRef calldata epoch,
        address miner,
        bytes32[] calldata answered,
        bytes32 jobId
    ) private view returns (bool) {
        Challenge storage c = $.challenges[_challengeKey(epoch.hub, epoch.index, miner)];
        if (c.status == ChallengeStatus.None) return false;
        if (c.status != ChallengeStatus.Answered) return true;
        if (keccak256(abi.encodePacked(answered)) != c.answeredJobs) revert PayoutMismatch(jobId);
        return !_contains(answered, jobId);
    }

    /// @inheritdoc IBatchSettlement
    function payClaim(bytes32 jobId, address[] calldata miners, uint256[] calldata amounts) external {
        BatchStorage storage $ = _storage();
        Claim storage claim = $.claims[jobId];
        if (claim.status != ClaimStatus.Pending || block.timestamp < claim.payableAt) {
            revert ClaimNotPayable(jobId);
        }
        if (keccak256(abi.encode(miners, amounts)) != claim.payout) revert PayoutMismatch(jobId);
        claim.status = ClaimStatus.Paid;
        AccountSlot storage payer = $.accounts[claim.hubPays ? claim.hub : claim.buyer];
        uint96 available = payer.balance < claim.amount ? payer.balance : claim.amount;
        payer.balance -= available;
        uint96 left = available;
        for (uint256 i; i < miners.length; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) each amount is within the uint96 total
            uint96 share = amounts[i] < left ? uint96(amounts[i]) : left;
            left -= share;
            if (share != 0) _creditEarned($, miners[i], share);
        }
        emit ClaimPaid(jobId, available, claim.amount - available);
    }

    // ---------------------------------------------------------------- verification

    /// @dev What every receipt of a job must match.
    struct Expected {
        bytes32 jobId;
        bytes32 specHash;
        address hub;
        bytes32 outputHash;
        address hubSigner;
        bytes32 separator;
    }

    /// @dev Checks one job whole: the buyer's JobAuth signature and terms, the k receipts (as the
    ///      escrow checks them, under its domain) and the payment; returns its amounts and leaf.
    function _verify(
        BatchStorage storage $,
        BatchJob calldata job,
        address hub,
        uint16 feeBps,
        bytes32 escrowSeparator
    ) private view returns (Checked memory k) {
        JobAuth calldata auth = job.auth;
        bytes32 authHash = hashJobAuth(auth);
        k.jobId = jobIdFor(job.buyer, auth.salt);
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecover(_hashTypedDataV4(authHash), job.authSignature);
        if (err != ECDSA.RecoverError.NoError || signer != job.buyer) revert InvalidAuthSignature(k.jobId);
        if (auth.hub != hub) revert WrongHub(k.jobId, auth.hub);
        if (feeBps > auth.maxFeeBps) revert FeeAboveAuth(k.jobId, feeBps, auth.maxFeeBps);
        if (auth.replicas == 0 || auth.replicas > MAX_REPLICAS) revert InvalidReplicas(auth.replicas);
        if (job.receipts.length != auth.replicas) {
            revert WrongReceiptCount(job.receipts.length, auth.replicas);
        }
        Expected memory expected = Expected({
            jobId: k.jobId,
            specHash: auth.specHash,
            hub: hub,
            outputHash: job.receipts[0].receipt.outputHash,
            hubSigner: $.registry.signerOf(hub, job.signerVersion),
            separator: escrowSeparator
        });
        (k.minersTotal, k.receiptsCommitment) = _checkReceipts(job.receipts, expected);
        k.total = k.minersTotal + k.minersTotal * feeBps / BPS;
        if (k.total > auth.maxPayment || k.total > type(uint96).max) {
            revert PaymentAboveAuth(k.jobId, k.total, auth.maxPayment);
        }
        k.leaf = leafHash(
            Leaf({
                jobId: k.jobId,
                buyer: job.buyer,
                authHash: authHash,
                receiptsCommitment: k.receiptsCommitment,
                // forge-lint: disable-next-line(unsafe-typecast) checked against type(uint96).max above
                total: uint96(k.total),
                deadline: auth.deadline,
                signerVersion: job.signerVersion,
                feeBps: feeBps
            })
        );
    }

    /// @dev The receipts' total charge and commitment; reverts on the first that does not count.
    function _checkReceipts(IJobEscrow.SignedReceipt[] calldata receipts, Expected memory expected)
        private
        pure
        returns (uint256 minersTotal, bytes32 commitment)
    {
        bytes32[] memory hashes = new bytes32[](receipts.length);
        for (uint256 i; i < receipts.length; ++i) {
            FogTypes.Receipt calldata receipt = receipts[i].receipt;
            _checkReceipt(receipts[i], i, expected);
            for (uint256 j; j < i; ++j) {
                if (receipts[j].receipt.miner == receipt.miner) revert DuplicateMiner(receipt.miner);
            }
            hashes[i] = receipt.hash();
            minersTotal += receipt.amountCharged;
        }
        commitment = keccak256(abi.encodePacked(hashes));
    }

    function _checkReceipt(IJobEscrow.SignedReceipt calldata signed, uint256 index, Expected memory expected)
        private
        pure
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
            MessageHashUtils.toTypedDataHash(expected.separator, receipt.assignmentHash(signed.maxCharge)),
            signed.assignmentSignature
        );
        if (
            aErr != ECDSA.RecoverError.NoError || expected.hubSigner == address(0)
                || assigner != expected.hubSigner
        ) {
            revert InvalidAssignment(index);
        }
        (address miner, ECDSA.RecoverError rErr,) = ECDSA.tryRecover(
            MessageHashUtils.toTypedDataHash(expected.separator, receipt.hash()), signed.receiptSignature
        );
        if (rErr != ECDSA.RecoverError.NoError || miner != receipt.miner) {
            revert InvalidReceiptSignature(index);
        }
    }

    // ---------------------------------------------------------------- helpers

    function _checkEpoch(BatchStorage storage $, EpochRef calldata epoch) private view {
        bytes32 stored = $.epochs[epoch.hub][epoch.index];
        if (
            stored == bytes32(0)
                || stored != keccak256(abi.encode(epoch.root, epoch.ledgerHash, epoch.committedAt))
        ) {
            revert UnknownEpoch(epoch.hub, epoch.index);
        }
    }

    function _creditBalance(BatchStorage storage $, address account, uint96 amount) private {
        $.accounts[account].balance += amount;
    }

    function _creditEarned(BatchStorage storage $, address account, uint96 amount) private {
        $.accounts[account].earned += amount;
    }

    function _amount(uint256 amount) private pure returns (uint96) {
        if (amount == 0 || amount > type(uint96).max) revert InvalidAmount(amount);
        // forge-lint: disable-next-line(unsafe-typecast) checked just above
        return uint96(amount);
    }

    function _unpack(uint256 entry) private pure returns (address account, bool debit, uint96 amount) {
        account = address(uint160(entry >> 96));
        debit = (entry >> AMOUNT_BITS) & 1 == 1;
        // forge-lint: disable-next-line(unsafe-typecast) masked to 95 bits
        amount = uint96(entry & AMOUNT_MASK);
    }

    function _contains(bytes32[] calldata list, bytes32 item) private pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == item) return true;
        }
        return false;
    }

    function _challengeKey(address hub, uint32 index, address account) private pure returns (bytes32) {
        return keccak256(abi.encode(hub, index, account));
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IBatchSettlement
    function jobIdFor(address buyer, bytes32 salt) public pure returns (bytes32) {
        return keccak256(abi.encode(BATCH_JOB_TAG, buyer, salt));
    }

    /// @inheritdoc IBatchSettlement
    function hashJobAuth(JobAuth calldata auth) public pure returns (bytes32) {
        return keccak256(abi.encode(JOB_AUTH_TYPEHASH, auth));
    }

    /// @inheritdoc IBatchSettlement
    function jobAuthDigest(JobAuth calldata auth) external view returns (bytes32) {
        return _hashTypedDataV4(hashJobAuth(auth));
    }

    /// @inheritdoc IBatchSettlement
    function leafHash(Leaf memory leaf) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(leaf))));
    }

    /// @inheritdoc IBatchSettlement
    function packEntry(address account, bool debit, uint256 amount) external pure returns (uint256) {
        if (amount > AMOUNT_MASK) revert InvalidAmount(amount);
        return (uint256(uint160(account)) << 96) | (debit ? uint256(1) << AMOUNT_BITS : 0) | amount;
    }

    /// @inheritdoc IBatchSettlement
    function accountOf(address account) external view returns (Account memory) {
        BatchStorage storage $ = _storage();
        AccountSlot storage a = $.accounts[account];
        return Account({
            balance: a.balance,
            earned: a.earned,
            withdrawal: $.withdrawals[account],
            withdrawableAt: a.withdrawableAt
        });
    }

    /// @inheritdoc IBatchSettlement
    function hubBook(address hub) external view returns (HubBook memory) {
        return _storage().hubs[hub];
    }

    /// @inheritdoc IBatchSettlement
    function epochHash(address hub, uint32 index) external view returns (bytes32) {
        return _storage().epochs[hub][index];
    }

    /// @inheritdoc IBatchSettlement
    function challengeOf(address hub, uint32 index, address account)
        external
        view
        returns (Challenge memory)
    {
        return _storage().challenges[_challengeKey(hub, index, account)];
    }

    /// @inheritdoc IBatchSettlement
    function claimOf(bytes32 jobId) external view returns (Claim memory) {
        return _storage().claims[jobId];
    }

    /// @inheritdoc IBatchSettlement
    function params() external view returns (Params memory) {
        return _storage().params;
    }

    /// @inheritdoc IBatchSettlement
    function wiring()
        external
        view
        returns (IERC20 token, IHubRegistry registry, IJobEscrow escrow, address fundsTimelock)
    {
        BatchStorage storage $ = _storage();
        return ($.token, $.registry, $.escrow, $.fundsTimelock);
    }

    function _authorizeUpgrade(address) internal view override {
        if (msg.sender != _storage().fundsTimelock) revert NotFundsTimelock(msg.sender);
    }

    function _storage() private pure returns (BatchStorage storage $) {
        assembly {
            $.slot := STORAGE_SLOT
        }
    }
}
