// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IBatchJobErrors, IFogErrors, IReceiptErrors} from "./IFogErrors.sol";
import {IBatchVerifier} from "./IBatchVerifier.sol";
import {IHubRegistry} from "./IHubRegistry.sol";
import {IJobEscrow} from "./IJobEscrow.sol";

/// @title IBatchSettlement
/// @notice The batched settlement path (docs/settlement.md). Buyers fund an account once and sign a
///         JobAuth per job instead of a transaction; the hub commits an epoch: a Merkle root over its
///         settled jobs and the net change of every account it touches, which the contract applies at once
///         (optimistically) after checking that the changes sum to zero and that the hub's bond covers
///         them. Anyone may challenge one account's change within the challenge window; the hub must then
///         reveal every job behind it with all signatures (JobAuth, assignments, receipts, k-of-n quorum),
///         or its bond pays the account and the challenger and the hub is frozen. A miner whose job was
///         never committed claims it from the buyer's account after the job's deadline, without the hub;
///         the claim is void if the job is shown in a committed epoch. Receipts and assignments are the
///         per-job escrow's (signed under its EIP-712 domain); JobAuths are signed under this contract's.
interface IBatchSettlement is IFogErrors, IReceiptErrors, IBatchJobErrors {
    /// @notice Timing and economics, fixed at initialisation; their reasons are in docs/settlement.md.
    /// @param challengeWindow Seconds after a commit during which an account change may be challenged.
    /// @param responseWindow Seconds the hub has to answer a challenge.
    /// @param claimPeriod Seconds after a job's deadline during which its miners may claim it themselves.
    /// @param proofWindow Seconds a forced claim waits for a proof that the job was already committed.
    /// @param authHorizon Furthest a JobAuth's deadline may lie from the moment a hub accepts it (hubs
    ///        and miners enforce it; the withdrawal delay is derived from it).
    /// @param withdrawalDelay Seconds between a withdrawal request and the withdrawal.
    /// @param rewardBps A successful challenger's reward, in basis points of the contested amount,
    ///        paid from the hub's bond on top of the victim's compensation.
    /// @param challengeStake Tokens a challenger puts up from its account; the hub gets them if it answers.
    struct Params {
        uint32 challengeWindow;
        uint32 responseWindow;
        uint32 claimPeriod;
        uint32 proofWindow;
        uint32 authHorizon;
        uint32 withdrawalDelay;
        uint16 rewardBps;
        uint96 challengeStake;
    }

    /// @notice A buyer's permission for one job, signed under this contract's EIP-712 domain. The job's
    ///         id is `BatchVerifier.jobIdFor(buyer, salt)`, distinct from every per-job escrow id.
    /// @param salt The buyer's salt.
    /// @param specHash EIP-712 hash of the JobSpec.
    /// @param hub The hub that may settle it.
    /// @param maxPayment Most the buyer pays for the job, the hub's commission included.
    /// @param deadline The job may be committed only in an epoch before it, and claimed only after it.
    /// @param replicas How many distinct assigned miners must agree on the output.
    /// @param maxFeeBps Highest commission the buyer accepts, in basis points of what miners charge.
    struct JobAuth {
        bytes32 salt;
        bytes32 specHash;
        address hub;
        uint256 maxPayment;
        uint64 deadline;
        uint16 replicas;
        uint16 maxFeeBps;
    }

    /// @notice Everything behind one committed job: what `answer` and `forceClaim` check.
    /// @param buyer The account that pays.
    /// @param auth The buyer's JobAuth.
    /// @param authSignature The buyer's signature of `auth`.
    /// @param signerVersion The hub signer version that signed the assignments.
    /// @param feeBps The commission the hub takes (at most `auth.maxFeeBps`; none on forced claims).
    /// @param receipts The k agreeing receipts, each with its assignment.
    /// @param proof The leaf's Merkle proof in its epoch (unused by `forceClaim`).
    struct BatchJob {
        address buyer;
        JobAuth auth;
        bytes authSignature;
        uint16 signerVersion;
        uint16 feeBps;
        IJobEscrow.SignedReceipt[] receipts;
        bytes32[] proof;
    }

    /// @notice A job's leaf in an epoch's Merkle tree: `BatchVerifier.leafHash(leaf)` is the leaf.
    /// @param jobId The job.
    /// @param buyer Who pays.
    /// @param authHash EIP-712 struct hash of the JobAuth.
    /// @param receiptsCommitment keccak256 of the receipts' struct hashes, in order (as the escrow's).
    /// @param total What the buyer pays: the receipts' charges plus the commission.
    /// @param deadline The JobAuth's deadline.
    /// @param signerVersion The assignments' signer version.
    /// @param feeBps The commission.
    struct Leaf {
        bytes32 jobId;
        address buyer;
        bytes32 authHash;
        bytes32 receiptsCommitment;
        uint96 total;
        uint64 deadline;
        uint16 signerVersion;
        uint16 feeBps;
    }

    /// @notice A buyer's EIP-2612 permit for this contract, which the hub carries in a commit: the
    ///         buyer's deposit into its own account, with no transaction of the buyer's.
    /// @param owner The buyer.
    /// @param value Tokens to deposit.
    /// @param deadline The permit's deadline.
    /// @param v Permit signature part.
    /// @param r Permit signature part.
    /// @param s Permit signature part.
    struct Funding {
        address owner;
        uint256 value;
        uint256 deadline;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @notice An epoch as committed: its stored hash is `keccak256(abi.encode(root, ledgerHash, committedAt))`.
    /// @param hub The hub that committed it.
    /// @param index Its number among the hub's epochs, from 0.
    /// @param root Merkle root of its leaves.
    /// @param ledgerHash keccak256 of its packed ledger entries.
    /// @param committedAt Block time of the commit.
    struct EpochRef {
        address hub;
        uint32 index;
        bytes32 root;
        bytes32 ledgerHash;
        uint40 committedAt;
    }

    /// @notice That a claimed job was committed, and what its miners' challenges in that epoch showed.
    /// @param epoch The epoch.
    /// @param leaf The job's leaf.
    /// @param proof The leaf's Merkle proof.
    /// @param miners The claim's miners, in the claim's order.
    /// @param amounts Their charges.
    /// @param answered Per miner, the job ids of its answered challenge in that epoch (empty if none).
    struct InclusionProof {
        EpochRef epoch;
        Leaf leaf;
        bytes32[] proof;
        address[] miners;
        uint256[] amounts;
        bytes32[][] answered;
    }

    /// @notice An account. `balance` is what its owner deposited (a buyer's funds, a hub's bond): epochs
    ///         debit it, and it leaves only after the withdrawal delay. `earned` is what epochs and
    ///         claims credited (a miner's pay, a hub's commission): it leaves at once, or moves into
    ///         `balance` in one step to pay for jobs.
    /// @param balance Deposited tokens, debited by jobs.
    /// @param earned Credited tokens, withdrawable at once.
    /// @param withdrawal Deposited tokens asked for.
    /// @param withdrawableAt When they may be taken (0: no request).
    struct Account {
        uint96 balance;
        uint96 earned;
        uint96 withdrawal;
        uint40 withdrawableAt;
    }

    /// @notice A hub's standing in this path.
    /// @param epochs Epochs committed so far.
    /// @param lastCommitAt Block time of the last commit.
    /// @param openChallenges Challenges not yet answered or resolved.
    /// @param frozen True once it failed a challenge or was caught: it commits no more and its bond stays.
    struct HubBook {
        uint32 epochs;
        uint40 lastCommitAt;
        uint16 openChallenges;
        bool frozen;
    }

    /// @notice Where a challenge is.
    enum ChallengeStatus {
        None,
        Open,
        Answered,
        Upheld
    }

    /// @notice One challenge of one account's change in one epoch.
    /// @param challenger Who challenged and put up the stake.
    /// @param answerBy The hub must answer by then.
    /// @param status Where it is.
    /// @param credit True if the contested change is a credit.
    /// @param amount The contested change's size.
    /// @param answeredJobs keccak256 of the answered job ids, in order (after an answer).
    struct Challenge {
        address challenger;
        uint40 answerBy;
        ChallengeStatus status;
        bool credit;
        uint96 amount;
        bytes32 answeredJobs;
    }

    /// @notice Where a forced claim is.
    enum ClaimStatus {
        None,
        Pending,
        Paid,
        Void
    }

    /// @notice A miner's claim of a job the hub did not commit.
    /// @param hub The job's hub.
    /// @param buyer Who pays.
    /// @param payableAt When it may be paid if nobody showed the job committed.
    /// @param status Where it is.
    /// @param hubPays True once the job was shown committed in an epoch that shorted its miners: the
    ///        hub's bond pays the claim instead of the buyer, who already paid in that epoch.
    /// @param amount What the miners charged (no commission on a forced claim).
    /// @param payout keccak256(abi.encode(miners, amounts)) of the receipts.
    struct Claim {
        address hub;
        address buyer;
        uint40 payableAt;
        ClaimStatus status;
        bool hubPays;
        uint96 amount;
        bytes32 payout;
    }

    /// @notice A parameter is out of its allowed range; the string names the rule.
    error InvalidParams(string rule);
    /// @notice Amounts must be positive and fit in 96 bits.
    error InvalidAmount(uint256 amount);
    /// @notice The account has earned less than asked for.
    error InsufficientEarnings(address account, uint256 earned, uint256 needed);
    /// @notice The account holds less than needed.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice No withdrawal was asked for, or its delay has not passed.
    error WithdrawalNotReady(address account, uint40 withdrawableAt);
    /// @notice A hub's bond cannot leave while one of its epochs can still be challenged or answered.
    error BondLocked(address hub, uint256 until);
    /// @notice Only the hub's current signer commits its epochs.
    error NotHubSigner(address caller, address signer);
    /// @notice Only the hub's operator moves the hub's account.
    error NotHubOperator(address caller, address operator);
    /// @notice The hub is not Active in the registry.
    error HubNotActive(address hub, IHubRegistry.HubState state);
    /// @notice The hub failed a challenge or was caught cheating; it commits no more.
    error HubFrozen(address hub);
    /// @notice The previous epoch is still open to challenges or has one unanswered.
    error EpochStillOpen(address hub, uint256 until);
    /// @notice The ledger's credits and debits differ.
    error LedgerUnbalanced(uint256 credits, uint256 debits);
    /// @notice A ledger entry is malformed (zero amount, a debit paid out, or accounts not strictly
    ///         increasing).
    error InvalidEntry(uint256 index);
    /// @notice The hub's bond does not cover the epoch's debits and the challengers' rewards.
    error BondTooSmall(address hub, uint256 bond, uint256 required);
    /// @notice The epoch reference does not match what was committed.
    error UnknownEpoch(address hub, uint32 index);
    /// @notice The challenge window of the epoch has closed.
    error ChallengeWindowClosed(uint256 closedAt);
    /// @notice This account's change in this epoch was already challenged.
    error AlreadyChallenged(address account);
    /// @notice The hub's own entry (its commissions) is not for others to contest.
    error HubEntry();
    /// @notice No open challenge matches.
    error NoOpenChallenge(address account);
    /// @notice The answer came after its deadline.
    error AnswerTooLate(uint40 answerBy);
    /// @notice The challenge's answer period has not ended.
    error AnswerPeriodRunning(uint40 answerBy);
    /// @notice The revealed jobs do not add up to the contested change.
    error AnswerMismatch(uint256 revealed, uint256 contested);
    /// @notice A forced claim outside [deadline + 1, deadline + claimPeriod].
    error ClaimOutsidePeriod(bytes32 jobId, uint256 opensAt, uint256 closesAt);
    /// @notice The job was already claimed.
    error AlreadyClaimed(bytes32 jobId);
    /// @notice No pending claim matches, or it is not payable yet.
    error ClaimNotPayable(bytes32 jobId);
    /// @notice The claim's miners or amounts, or the answered job lists, differ from what is recorded.
    error PayoutMismatch(bytes32 jobId);
    /// @notice This job's fraud was already proven and paid for.
    error AlreadyProven(bytes32 jobId);
    /// @notice The two leaves are not a duplicate (different ids or the very same leaf).
    error NotDuplicate();
    /// @notice The leaf was committed before its deadline: nothing to prove.
    error NotLate(bytes32 jobId);
    /// @notice Only the funds timelock upgrades this contract.
    error NotFundsTimelock(address caller);

    /// @notice Tokens entered an account's balance.
    event Deposited(address indexed account, address indexed from, uint256 amount);
    /// @notice A withdrawal was asked for (amount 0 cancels).
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 withdrawableAt);
    /// @notice Deposited tokens left an account.
    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    /// @notice Earned tokens left an account.
    event EarningsWithdrawn(address indexed account, address indexed to, uint256 amount);
    /// @notice Earned tokens became the account's balance, to pay for jobs.
    event EarningsSpent(address indexed account, uint256 amount);
    /// @notice A hub committed an epoch; `entries` are its packed ledger (see `packEntry`).
    event EpochCommitted(
        address indexed hub,
        uint32 indexed index,
        bytes32 root,
        bytes32 ledgerHash,
        uint40 committedAt,
        uint32 jobCount,
        uint256[] entries
    );
    /// @notice An account's change in an epoch was challenged.
    event Challenged(
        address indexed hub,
        uint32 indexed index,
        address indexed account,
        address challenger,
        uint40 answerBy
    );
    /// @notice A committed job was revealed with all its evidence (in an answer).
    event JobRevealed(
        address indexed hub,
        uint32 indexed index,
        bytes32 indexed jobId,
        bytes32 leaf,
        bytes32 receiptsCommitment
    );
    /// @notice The hub answered a challenge; the challenger's stake went to the hub.
    event ChallengeAnswered(address indexed hub, uint32 indexed index, address indexed account, uint256 jobs);
    /// @notice An unanswered challenge was upheld.
    event ChallengeUpheld(address indexed hub, uint32 indexed index, address indexed account);
    /// @notice A hub was caught; its bond paid the victim and the challenger, and it is frozen.
    event HubFraud(
        address indexed hub,
        address indexed victim,
        address indexed challenger,
        uint256 compensation,
        uint256 reward
    );
    /// @notice A miner claimed a job the hub did not commit.
    event ClaimOpened(
        bytes32 indexed jobId,
        address indexed hub,
        address indexed buyer,
        uint256 amount,
        uint40 payableAt,
        bytes32 receiptsCommitment
    );
    /// @notice A claim was shown committed and is void.
    event ClaimVoided(bytes32 indexed jobId, address indexed hub, uint32 index);
    /// @notice A claim's job was shown committed in an epoch that shorted its miners: the hub pays it.
    event ClaimRedirected(bytes32 indexed jobId, address indexed hub, uint32 index, address miner);
    /// @notice A claim was paid (`shortfall` is what the paying account lacked).
    event ClaimPaid(bytes32 indexed jobId, uint256 amount, uint256 shortfall);

    /// @notice Sets the wiring and parameters, once, behind the proxy.
    /// @param token The FOG token.
    /// @param registry The hub registry (hub state, signers, operators).
    /// @param escrow The per-job escrow, whose EIP-712 domain signs receipts and assignments.
    /// @param verifier Checks a job's evidence (a separate contract: both would not fit in one).
    /// @param fundsTimelock The only upgrader.
    /// @param params Timing and economics.
    function initialize(
        IERC20 token,
        IHubRegistry registry,
        IJobEscrow escrow,
        IBatchVerifier verifier,
        address fundsTimelock,
        Params calldata params
    ) external;

    /// @notice Moves `amount` tokens from the caller into `account`'s balance (allowance needed).
    /// @param account The account credited (a buyer's own, or a hub's bond).
    /// @param amount Tokens.
    function deposit(address account, uint256 amount) external;

    /// @notice `deposit` into the caller's own account with an EIP-2612 permit instead of an allowance.
    /// @param amount Tokens.
    /// @param permitDeadline The permit's deadline.
    /// @param v Permit signature part.
    /// @param r Permit signature part.
    /// @param s Permit signature part.
    function depositWithPermit(uint256 amount, uint256 permitDeadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Asks to withdraw `amount` of the balance after the withdrawal delay; replaces any earlier
    ///         request (0 cancels). For a hub account, the caller is the hub's operator.
    /// @param account The caller's own address, or a hub it operates.
    /// @param amount Tokens.
    function requestWithdrawal(address account, uint256 amount) external;

    /// @notice Pays out a ripe withdrawal request (at most the balance) to the caller.
    /// @param account The caller's own address, or a hub it operates.
    function withdraw(address account) external;

    /// @notice Pays `amount` of the account's earnings to the caller, at once.
    /// @param account The caller's own address, or a hub it operates (not while it is frozen).
    /// @param amount Tokens.
    function withdrawEarnings(address account, uint256 amount) external;

    /// @notice Moves `amount` of the account's earnings into its balance, to pay for jobs: a miner who
    ///         is also a buyer spends what it earned without a withdrawal and a deposit.
    /// @param account The caller's own address, or a hub it operates.
    /// @param amount Tokens.
    function spendEarnings(address account, uint256 amount) external;

    /// @notice Commits an epoch of `hub`: first deposits the buyers' permits it carries into their own
    ///         accounts, then applies its ledger at once (debits from balances, credits to earnings or,
    ///         flagged, to wallets). Only the hub's current signer, while the hub is Active and not
    ///         frozen, after the previous epoch's windows have passed with no challenge open.
    /// @param hub The hub.
    /// @param root Merkle root of the epoch's leaves.
    /// @param jobCount How many jobs it settles.
    /// @param fundings Buyers' permits to deposit first (each into its owner's account).
    /// @param entries Packed ledger entries (`packEntry`), accounts strictly increasing, credits and
    ///        debits summing to zero.
    /// @return index The epoch's number.
    function commitEpoch(
        address hub,
        bytes32 root,
        uint32 jobCount,
        Funding[] calldata fundings,
        uint256[] calldata entries
    ) external returns (uint32 index);

    /// @notice Challenges entry `position` of an epoch's ledger; puts up `challengeStake` from the
    ///         caller's balance.
    /// @param epoch The epoch as committed.
    /// @param entries The epoch's whole ledger.
    /// @param position The contested entry.
    function challenge(EpochRef calldata epoch, uint256[] calldata entries, uint256 position) external;

    /// @notice Answers a challenge with every job behind the account's change, ids strictly increasing,
    ///         each fully checked; the stake goes to the hub.
    /// @param epoch The epoch as committed.
    /// @param account The challenged account.
    /// @param jobs The jobs, `abi.encode(BatchJob[])` (checked by the BatchVerifier).
    function answer(EpochRef calldata epoch, address account, bytes calldata jobs) external;

    /// @notice Upholds a challenge left unanswered past its deadline: the hub is frozen and its bond pays.
    /// @param epoch The epoch as committed.
    /// @param account The challenged account.
    function resolve(EpochRef calldata epoch, address account) external;

    /// @notice Shows one job id in two leaves of the hub's epochs: the hub is frozen and its bond
    ///         repays the second leaf's total to its buyer.
    /// @param first The first epoch.
    /// @param a The first leaf.
    /// @param proofA Its proof.
    /// @param second The second epoch (may equal the first).
    /// @param b The second leaf.
    /// @param proofB Its proof.
    function proveDuplicate(
        EpochRef calldata first,
        Leaf calldata a,
        bytes32[] calldata proofA,
        EpochRef calldata second,
        Leaf calldata b,
        bytes32[] calldata proofB
    ) external;

    /// @notice Shows a leaf committed at or after its deadline: the hub is frozen and its bond repays
    ///         the leaf's total to its buyer.
    /// @param epoch The epoch.
    /// @param leaf The leaf.
    /// @param proof Its proof.
    function proveLate(EpochRef calldata epoch, Leaf calldata leaf, bytes32[] calldata proof) external;

    /// @notice A job's miners claim it themselves after its deadline (within the claim period), with the
    ///         buyer's JobAuth and the k receipts; payable after the proof window unless shown committed.
    /// @param job The job, `abi.encode(BatchJob)` (feeBps and proof ignored).
    /// @return jobId The job.
    function forceClaim(bytes calldata job) external returns (bytes32 jobId);

    /// @notice Voids a pending claim by showing its job in a committed epoch of its hub. For each of the
    ///         claim's miners who challenged their credit in that epoch, `answered[i]` lists the answer's
    ///         job ids; if the job is not among them, or a challenge was upheld or is open, the miners
    ///         were shorted there and the claim stands, paid by the hub's bond instead of the buyer.
    /// @param jobId The claimed job.
    /// @param proof Where the job was committed.
    function contestClaim(bytes32 jobId, InclusionProof calldata proof) external;

    /// @notice Pays a claim whose proof window passed, from the buyer's balance (or the hub's) to the
    ///         miners' earnings.
    /// @param jobId The job.
    /// @param miners The receipts' miners, in order.
    /// @param amounts Their charges.
    function payClaim(bytes32 jobId, address[] calldata miners, uint256[] calldata amounts) external;

    /// @notice The digest a buyer signs for `auth` (this contract's EIP-712 domain).
    /// @param auth The authorisation.
    /// @return The digest.
    function jobAuthDigest(JobAuth calldata auth) external view returns (bytes32);

    /// @notice Packs a ledger entry: the account in the top 160 bits, a debit flag in bit 95, a payout
    ///         flag in bit 94 (a credit paid straight to the account's wallet instead of its earnings:
    ///         no withdrawal transaction), the amount in the low 94 bits.
    /// @param account The account.
    /// @param debit True for a debit.
    /// @param payout True for a credit paid out at once (never with `debit`).
    /// @param amount The amount (below 2^94).
    /// @return The packed entry.
    function packEntry(address account, bool debit, bool payout, uint256 amount)
        external
        pure
        returns (uint256);

    /// @notice An account.
    /// @param account The address.
    /// @return The account.
    function accountOf(address account) external view returns (Account memory);

    /// @notice A hub's standing.
    /// @param hub The hub.
    /// @return The book.
    function hubBook(address hub) external view returns (HubBook memory);

    /// @notice The stored hash of a hub's epoch (zero if none).
    /// @param hub The hub.
    /// @param index The epoch.
    /// @return keccak256(abi.encode(root, ledgerHash, committedAt)).
    function epochHash(address hub, uint32 index) external view returns (bytes32);

    /// @notice A challenge.
    /// @param hub The hub.
    /// @param index The epoch.
    /// @param account The account.
    /// @return The challenge.
    function challengeOf(address hub, uint32 index, address account) external view returns (Challenge memory);

    /// @notice A forced claim.
    /// @param jobId The job.
    /// @return The claim.
    function claimOf(bytes32 jobId) external view returns (Claim memory);

    /// @notice The parameters.
    /// @return The parameters.
    function params() external view returns (Params memory);

    /// @notice The wiring.
    /// @return token The token.
    /// @return registry The registry.
    /// @return escrow The escrow.
    /// @return verifier The evidence checker.
    /// @return fundsTimelock The upgrader.
    function wiring()
        external
        view
        returns (
            IERC20 token,
            IHubRegistry registry,
            IJobEscrow escrow,
            IBatchVerifier verifier,
            address fundsTimelock
        );
}
