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
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IBatchSettlement} from "./interfaces/IBatchSettlement.sol";
import {IBatchVerifier} from "./interfaces/IBatchVerifier.sol";
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

    /// @custom:storage-location erc7201:fog.storage.BatchSettlement
    struct BatchStorage {
        IERC20 token;
        IHubRegistry registry;
        IJobEscrow escrow;
        IBatchVerifier verifier;
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
    uint256 internal constant DEBIT_BIT = 95;
    uint256 internal constant PAYOUT_BIT = 94;
    uint256 internal constant AMOUNT_MASK = (uint256(1) << PAYOUT_BIT) - 1;

    /// @dev An account's one slot; the amount of a withdrawal request lives apart (it is rare).
    ///      `opened` keeps the slot non-zero once used, so that later credits to an emptied account
    ///      cost a non-zero write (2,900 gas), not a new slot (20,000).
    struct AccountSlot {
        uint96 balance;
        uint96 earned;
        uint40 withdrawableAt;
        bool opened;
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
        IBatchVerifier verifier_,
        address fundsTimelock_,
        Params calldata params_
    ) external initializer {
        if (
            address(token_) == address(0) || address(registry_) == address(0)
                || address(escrow_) == address(0) || address(verifier_) == address(0)
                || fundsTimelock_ == address(0)
        ) revert ZeroAddress();
        _checkParams(params_);
        __EIP712_init("Fog Batch", "1");
        BatchStorage storage $ = _storage();
        $.token = token_;
        $.registry = registry_;
        $.escrow = escrow_;
        $.verifier = verifier_;
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
    function commitEpoch(
        address hub,
        bytes32 root,
        uint32 jobCount,
        Funding[] calldata fundings,
        uint256[] calldata entries
    ) external returns (uint32 index) {
        BatchStorage storage $ = _storage();
        HubBook storage book = _checkCommitter($, hub);
        _fund($, fundings);
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

    /// @dev Buyers' permits the hub carries: each buyer's deposit into its own account, without a
    ///      transaction of the buyer's. A permit already used is tolerated when the allowance stands.
    function _fund(BatchStorage storage $, Funding[] calldata fundings) private {
        IERC20 token = $.token;
        for (uint256 i; i < fundings.length; ++i) {
            Funding calldata f = fundings[i];
            uint96 amount = _amount(f.value);
            try IERC20Permit(address(token))
                .permit(f.owner, address(this), f.value, f.deadline, f.v, f.r, f.s) {}
                catch {}
            _creditBalance($, f.owner, amount);
            emit Deposited(f.owner, f.owner, f.value);
            token.safeTransferFrom(f.owner, address(this), f.value);
        }
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
    ///      credits equal debits. Credits flagged for payout go straight to the account's wallet, after
    ///      every balance is updated.
    function _applyLedger(BatchStorage storage $, uint256[] calldata entries)
        private
        returns (uint256 debits)
    {
        uint256 credits;
        uint256 payouts;
        address previous;
        for (uint256 i; i < entries.length; ++i) {
            (address account, bool debit, bool payout, uint96 amount) = _unpack(entries[i]);
            if (account <= previous || amount == 0 || (debit && payout)) revert InvalidEntry(i);
            previous = account;
            if (payout) {
                credits += amount;
                payouts += 1;
                continue;
            }
            AccountSlot storage a = $.accounts[account];
            if (debit) {
                uint96 balance = a.balance;
                if (balance < amount) revert InsufficientBalance(account, balance, amount);
                a.balance = balance - amount;
                debits += amount;
            } else {
                a.earned += amount;
                a.opened = true;
                credits += amount;
            }
        }
        if (credits != debits) revert LedgerUnbalanced(credits, debits);
        for (uint256 i; payouts != 0 && i < entries.length; ++i) {
            (address account,, bool payout, uint96 amount) = _unpack(entries[i]);
            if (payout) {
                --payouts;
                $.token.safeTransfer(account, amount);
            }
        }
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
        (address account, bool debit,, uint96 amount) = _unpack(entries[position]);
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
    function answer(EpochRef calldata epoch, address account, bytes calldata jobs) external {
        BatchStorage storage $ = _storage();
        _checkEpoch($, epoch);
        Challenge storage c = $.challenges[_challengeKey(epoch.hub, epoch.index, account)];
        if (c.status != ChallengeStatus.Open) revert NoOpenChallenge(account);
        if (block.timestamp > c.answerBy) revert AnswerTooLate(c.answerBy);
        IBatchVerifier.Answer memory a =
            $.verifier.checkAnswer(jobs, _context($, epoch.hub, account, epoch.root, epoch.committedAt));
        // The account's net change in the epoch, as the revealed jobs make it.
        bool credit = a.earned > a.paid;
        uint256 net = credit ? a.earned - a.paid : a.paid - a.earned;
        if (net != c.amount || (net != 0 && credit != c.credit)) revert AnswerMismatch(net, c.amount);
        c.status = ChallengeStatus.Answered;
        c.answeredJobs = a.answeredJobs;
        $.hubs[epoch.hub].openChallenges -= 1;
        // The stake pays for the hub's trouble.
        _creditEarned($, epoch.hub, $.params.challengeStake);
        for (uint256 i; i < a.revealed.length; ++i) {
            IBatchVerifier.Revealed memory r = a.revealed[i];
            emit JobRevealed(epoch.hub, epoch.index, r.jobId, r.leaf, r.receiptsCommitment);
        }
        emit ChallengeAnswered(epoch.hub, epoch.index, account, a.revealed.length);
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
        bytes32 leafA = $.verifier.leafHash(a);
        bytes32 leafB = $.verifier.leafHash(b);
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
        if (!MerkleProof.verifyCalldata(proof, epoch.root, $.verifier.leafHash(leaf))) {
            revert NotInEpoch(leaf.jobId);
        }
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
    function forceClaim(bytes calldata job) external returns (bytes32 jobId) {
        BatchStorage storage $ = _storage();
        IBatchVerifier.Claimed memory k =
            $.verifier.checkClaim(job, _context($, address(0), address(0), 0, 0));
        jobId = k.jobId;
        uint256 opensAt = uint256(k.deadline) + 1;
        uint256 closesAt = uint256(k.deadline) + $.params.claimPeriod;
        if (block.timestamp < opensAt || block.timestamp > closesAt) {
            revert ClaimOutsidePeriod(jobId, opensAt, closesAt);
        }
        Claim storage claim = $.claims[jobId];
        if (claim.status != ClaimStatus.None) revert AlreadyClaimed(jobId);
        // forge-lint: disable-next-line(unsafe-typecast) block time plus a uint32 fits in 40 bits
        uint40 payableAt = uint40(block.timestamp + $.params.proofWindow);
        claim.hub = k.hub;
        claim.buyer = k.buyer;
        claim.payableAt = payableAt;
        claim.status = ClaimStatus.Pending;
        // forge-lint: disable-next-line(unsafe-typecast) at most the JobAuth's maxPayment, checked to fit
        claim.amount = uint96(k.minersTotal);
        claim.payout = k.payout;
        emit ClaimOpened(jobId, k.hub, k.buyer, k.minersTotal, payableAt, k.receiptsCommitment);
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
        if (
            p.leaf.jobId != jobId
                || !MerkleProof.verifyCalldata(p.proof, p.epoch.root, $.verifier.leafHash(p.leaf))
        ) {
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

    /// @dev What the verifier needs from here: the epoch, the registry and both domain separators.
    function _context(BatchStorage storage $, address hub, address account, bytes32 root, uint40 committedAt)
        private
        view
        returns (IBatchVerifier.Context memory)
    {
        return IBatchVerifier.Context({
            hub: hub,
            account: account,
            root: root,
            committedAt: committedAt,
            registry: address($.registry),
            batchSeparator: _domainSeparatorV4(),
            escrowSeparator: $.escrow.domainSeparator()
        });
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
        AccountSlot storage a = $.accounts[account];
        a.balance += amount;
        a.opened = true;
    }

    function _creditEarned(BatchStorage storage $, address account, uint96 amount) private {
        AccountSlot storage a = $.accounts[account];
        a.earned += amount;
        a.opened = true;
    }

    function _amount(uint256 amount) private pure returns (uint96) {
        if (amount == 0 || amount > type(uint96).max) revert InvalidAmount(amount);
        // forge-lint: disable-next-line(unsafe-typecast) checked just above
        return uint96(amount);
    }

    function _unpack(uint256 entry)
        private
        pure
        returns (address account, bool debit, bool payout, uint96 amount)
    {
        account = address(uint160(entry >> 96));
        debit = (entry >> DEBIT_BIT) & 1 == 1;
        payout = (entry >> PAYOUT_BIT) & 1 == 1;
        // forge-lint: disable-next-line(unsafe-typecast) masked to 94 bits
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
    function jobAuthDigest(JobAuth calldata auth) external view returns (bytes32) {
        return _hashTypedDataV4(_storage().verifier.hashJobAuth(auth));
    }

    /// @inheritdoc IBatchSettlement
    function packEntry(address account, bool debit, bool payout, uint256 amount)
        external
        pure
        returns (uint256)
    {
        if (amount > AMOUNT_MASK || (debit && payout)) revert InvalidAmount(amount);
        return (uint256(uint160(account)) << 96) | (debit ? uint256(1) << DEBIT_BIT : 0)
            | (payout ? uint256(1) << PAYOUT_BIT : 0) | amount;
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
        returns (
            IERC20 token,
            IHubRegistry registry,
            IJobEscrow escrow,
            IBatchVerifier verifier,
            address fundsTimelock
        )
    {
        BatchStorage storage $ = _storage();
        return ($.token, $.registry, $.escrow, $.verifier, $.fundsTimelock);
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
