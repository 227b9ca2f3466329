// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IFogErrors} from "./IFogErrors.sol";

/// @title IHubRegistry
/// @notice Hubs register with a frozen deposit held in their HubWallet. The registry keeps each hub's
///         book of open escrow, which the escrow reserves and releases: a hub's open escrow is capped at
///         a governance-set share of its deposit, and its deposit stays frozen and blacklistable until
///         every job it holds is closed and the unbonding period has passed since the last of them.
interface IHubRegistry is IFogErrors {
    /// @notice Life cycle of a hub. Only Active hubs take new jobs; Exiting and Blacklisted hubs' open
    ///         jobs still settle or refund.
    enum HubState {
        None,
        Active,
        Exiting,
        Blacklisted,
        Exited
    }

    /// @notice Everything the registry knows of one hub, packed in three slots and the endpoint. The
    ///         deposit itself lives in the HubWallet; `deposit` here is its frozen amount, for the cap.
    ///         The escrow's book of open jobs (`openJobs`, `lastClosedAt`, `openEscrow`) and `deposit`
    ///         share one slot, so opening or closing a job writes one slot here; those changes are
    ///         recorded by the escrow's JobOpened, JobSettled and JobRefunded events.
    /// @param operator Who operates the hub: withdraws earnings, rotates the signer, exits.
    /// @param state The hub's state.
    /// @param feeBps Commission in basis points of what miners charge.
    /// @param exitAt Earliest exit completion, set when the exit is announced.
    /// @param signerVersion Bumped at every rotation; jobs snapshot it when they open.
    /// @param signer The current assignment signer.
    /// @param openJobs Jobs opened with the hub and not yet settled or refunded.
    /// @param lastClosedAt When the hub's last job was settled or refunded (its registration before).
    /// @param openEscrow Tokens locked in the hub's open jobs.
    /// @param deposit The frozen deposit.
    /// @param endpoint The hub's public URL.
    struct Hub {
        address operator;
        HubState state;
        uint16 feeBps;
        uint40 exitAt;
        uint16 signerVersion;
        address signer;
        uint24 openJobs;
        uint40 lastClosedAt;
        uint96 openEscrow;
        uint96 deposit;
        string endpoint;
    }

    /// @notice Parameters set at initialisation; `maxExposureBps` and `unbondingPeriod` are governance's.
    /// @param token The FogToken.
    /// @param walletBeacon The beacon all HubWallets share.
    /// @param timelock The DAO's timelock: blacklists and parameters.
    /// @param fundsTimelock The longer timelock that alone upgrades the registry (it controls deposits).
    /// @param governor The DAO's governor (vote lengths bound the unbonding period).
    /// @param treasury The DaoTreasury, receiver of expropriated deposits.
    /// @param minDeposit Smallest deposit a hub registers with.
    /// @param unbondingPeriod Wait between a hub's last closed job (or its exit announcement) and exit.
    /// @param maxFeeBps Highest commission a hub may ask.
    /// @param maxExposureBps Most open escrow a hub may hold, in basis points of its deposit (<= 100%).
    struct Config {
        IERC20 token;
        address walletBeacon;
        TimelockController timelock;
        TimelockController fundsTimelock;
        IGovernor governor;
        address treasury;
        uint256 minDeposit;
        uint64 unbondingPeriod;
        uint16 maxFeeBps;
        uint16 maxExposureBps;
    }

    /// @notice The unbonding period must outlast a whole DAO vote plus the margin.
    error UnbondingTooShort(uint64 unbondingPeriod, uint256 required);
    /// @notice The commission is above the registry's maximum.
    error FeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    /// @notice The maximum commission is above 100%.
    error InvalidMaxFee(uint16 maxFeeBps);
    /// @notice The exposure cap must be above 0 and at most 100% of the deposit.
    error InvalidExposure(uint16 maxExposureBps);
    /// @notice The deposit is below the minimum.
    error DepositTooSmall(uint256 deposit, uint256 minDeposit);
    /// @notice The deposit does not fit the registry's 96-bit book (more than the token's supply).
    error DepositTooLarge(uint256 deposit);
    /// @notice The endpoint is empty or longer than 256 bytes.
    error InvalidEndpoint();
    /// @notice Only the hub's operator may do this.
    error NotOperator(address caller);
    /// @notice Only the DAO's timelock may do this.
    error NotTimelock(address caller);
    /// @notice Only the funds timelock may upgrade the registry.
    error NotFundsTimelock(address caller);
    /// @notice Only the escrow may reserve and release a hub's open escrow.
    error NotEscrow(address caller);
    /// @notice Only the deploying account may bind the escrow, once.
    error NotBinder(address caller);
    /// @notice No hub is registered at this address.
    error UnknownHub(address hub);
    /// @notice The hub is not in a state that allows this.
    error WrongState(address hub, HubState state);
    /// @notice The hub's deposit is still bonded until `until`.
    error StillUnbonding(address hub, uint64 until);
    /// @notice The hub still holds open jobs: they must be settled or refunded first.
    error JobsStillOpen(address hub, uint24 openJobs);
    /// @notice The hub holds as many open jobs as its book counts.
    error TooManyOpenJobs(address hub);
    /// @notice Opening this job would put the hub's open escrow above its cap.
    error ExposureCapExceeded(address hub, uint256 openEscrow, uint256 cap);

    /// @notice A hub registered with its signer, commission, deposit and endpoint.
    event HubRegistered(
        address indexed hub,
        address indexed operator,
        address signer,
        uint16 feeBps,
        uint256 deposit,
        string endpoint
    );
    /// @notice The hub's assignment signer changed; jobs opened before keep their signer.
    event SignerChanged(address indexed hub, address signer, uint16 signerVersion);
    /// @notice The hub's public URL changed.
    event EndpointChanged(address indexed hub, string endpoint);
    /// @notice The hub announced its exit; it completes no sooner than `exitAt`.
    event ExitAnnounced(address indexed hub, uint64 exitAt);
    /// @notice The hub left; its deposit went back to its operator.
    event ExitCompleted(address indexed hub, uint256 depositReturned);
    /// @notice The DAO blacklisted `hub`; its deposit went to the treasury as `lotId`.
    event HubBlacklisted(address indexed hub, bytes32 indexed evidenceJobId, uint256 deposit, uint256 lotId);
    /// @notice The escrow the registry answers to was bound.
    event EscrowBound(address indexed escrow);
    /// @notice Governance set the exposure cap.
    event ExposureCapSet(uint16 maxExposureBps);
    /// @notice Governance set the unbonding period.
    event UnbondingPeriodSet(uint64 unbondingPeriod);

    /// @notice Registers a hub: creates its HubWallet and moves `deposit` tokens from the caller into it.
    /// @param signer Key that will sign the hub's assignments.
    /// @param feeBps Commission in basis points of what miners charge.
    /// @param endpoint The hub's public URL (1-256 bytes).
    /// @param deposit Tokens to lock, at least the minimum deposit; the caller must have approved them.
    /// @return hub The hub's id: its HubWallet address.
    function register(address signer, uint16 feeBps, string calldata endpoint, uint256 deposit)
        external
        returns (address hub);

    /// @notice Rotates the key that signs the hub's assignments, for jobs opened from now on; jobs
    ///         already open keep the signer they opened with.
    /// @param hub The hub.
    /// @param signer The new signing key.
    function setSigner(address hub, address signer) external;

    /// @notice Changes the hub's public URL.
    /// @param hub The hub.
    /// @param endpoint The new URL (1-256 bytes).
    function setEndpoint(address hub, string calldata endpoint) external;

    /// @notice Starts leaving: the hub takes no new jobs. The exit completes once every job it holds is
    ///         closed and the unbonding period has passed since this announcement and since its last job.
    /// @param hub The hub.
    function announceExit(address hub) external;

    /// @notice Finishes leaving: the deposit returns to the operator.
    /// @param hub The hub.
    function completeExit(address hub) external;

    /// @notice Blacklists a cheating hub and expropriates its frozen deposit into the treasury; its open
    ///         jobs become refundable at once. Timelock only (a passed DAO proposal).
    /// @param hub The hub.
    /// @param evidenceJobId The job whose on-chain receipts are the evidence.
    function blacklist(address hub, bytes32 evidenceJobId) external;

    /// @notice Sets the exposure cap. Timelock only.
    /// @param maxExposureBps Most open escrow per hub in basis points of its deposit (1-10,000).
    function setExposureCap(uint16 maxExposureBps) external;

    /// @notice Sets the unbonding period. Timelock only; it must outlast a vote plus the margin.
    /// @param unbondingPeriod Seconds.
    function setUnbondingPeriod(uint64 unbondingPeriod) external;

    /// @notice Names the JobEscrow, the only caller of `reserve` and `release`. Once, by the deployer.
    /// @param escrow The JobEscrow proxy.
    function bindEscrow(address escrow) external;

    /// @notice A job opens with `hub`: checks the hub is Active and the cap holds, and books `amount`.
    ///         Escrow only; the escrow's JobOpened event records it.
    /// @param hub The hub.
    /// @param amount The job's locked payment.
    /// @return signerVersion The hub's signer version, which the job keeps.
    /// @return feeBps The hub's commission, which the job keeps.
    function reserve(address hub, uint256 amount) external returns (uint16 signerVersion, uint16 feeBps);

    /// @notice A job of `hub` settles or refunds: releases `amount` and stamps the close. Escrow only;
    ///         the escrow's JobSettled or JobRefunded event records it.
    /// @param hub The hub.
    /// @param amount The job's locked payment.
    /// @param signerVersion The signer version the job opened with.
    /// @return state The hub's state now.
    /// @return signer The signer of that version: whose assignments count for the job.
    function release(address hub, uint256 amount, uint16 signerVersion)
        external
        returns (HubState state, address signer);

    /// @notice The terms under which `hub` takes and settles jobs.
    /// @param hub The hub's id (its HubWallet address).
    /// @return state The hub's state.
    /// @return signer The key that signs the hub's new assignments.
    /// @return feeBps The hub's commission in basis points of what miners charge.
    function hubTerms(address hub) external view returns (HubState state, address signer, uint16 feeBps);

    /// @notice The signer of `hub`'s assignments under `signerVersion`.
    /// @param hub The hub.
    /// @param signerVersion A version the hub had.
    /// @return The signer, or zero for a version that never was.
    function signerOf(address hub, uint16 signerVersion) external view returns (address);

    /// @notice The operator of `hub`, who may withdraw its earnings.
    /// @param hub The hub's id.
    /// @return The operator's address, or zero for an unknown hub.
    function operatorOf(address hub) external view returns (address);

    /// @notice Everything the registry knows about `hub`.
    /// @param hub The hub.
    /// @return The hub's record.
    function hubInfo(address hub) external view returns (Hub memory);

    /// @notice The most open escrow `hub` may hold now.
    /// @param hub The hub.
    /// @return The cap in token base units.
    function exposureCap(address hub) external view returns (uint256);

    /// @notice The registry's configuration.
    /// @return The configuration.
    function config() external view returns (Config memory);

    /// @notice How many hubs ever registered.
    /// @return The count.
    function hubCount() external view returns (uint256);

    /// @notice Longest time from a proposal's creation to its execution: voting delay + voting period +
    ///         timelock delay, in seconds, as the governance is set now.
    /// @return The duration in seconds.
    function voteDuration() external view returns (uint256);

    /// @notice The wait a hub's exit takes now: the unbonding period, or a whole vote plus the margin if
    ///         governance has since made votes longer.
    /// @return The wait in seconds.
    function effectiveUnbonding() external view returns (uint256);
}
