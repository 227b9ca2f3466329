// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {BeaconProxy} from "@openzeppelin/contracts/proxy/beacon/BeaconProxy.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IDaoTreasury} from "./interfaces/IDaoTreasury.sol";
import {IHubRegistry} from "./interfaces/IHubRegistry.sol";
import {IHubWallet} from "./interfaces/IHubWallet.sol";

/// @title HubRegistry
/// @notice Hubs register here by creating their HubWallet and locking a deposit that stays frozen while
///         they hold jobs. The registry books each hub's open escrow for the JobEscrow: a hub holds at most
///         a governance-set share of its deposit in open jobs, so a blacklist always costs a cheating hub
///         more than it can take. Leaving takes every job closed and an unbonding period, since the
///         announcement and since the last job, longer than a whole DAO vote plus a margin, so a hub cannot
///         run from a pending blacklist vote. A blacklist sends the deposit to the DaoTreasury.
///         Upgradeable (UUPS) only by the funds timelock: the registry moves deposits.
contract HubRegistry is Initializable, UUPSUpgradeable, IHubRegistry {
    using SafeERC20 for IERC20;

    /// @custom:storage-location erc7201:fog.storage.HubRegistry
    struct RegistryStorage {
        Config config;
        mapping(address hub => Hub) hubs;
        mapping(address hub => mapping(uint16 version => address signer)) pastSigners;
        uint256 hubCount;
        // The escrow and the live exposure cap share a slot: every reserve reads both, once.
        address escrow;
        uint16 maxExposureBps;
        address binder;
    }

    // keccak256(abi.encode(uint256(keccak256("fog.storage.HubRegistry")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0x6049eb1fd0118f7c564f31206116ff65c9a7490fc17121fd5c3cd35a4fde2c00;
    /// @notice Commission and exposure are in basis points; 10,000 is 100%.
    uint16 public constant BPS = 10_000;
    /// @notice Longest endpoint URL accepted.
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;
    /// @notice What the unbonding period must exceed a whole vote by: time to notice a cheat and
    ///         propose, and no same-second race between an exit and an execution.
    uint256 public constant UNBONDING_MARGIN = 1 hours;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Sets the registry up. Checks that the unbonding period outlasts a DAO vote plus the margin.
    /// @param config_ See `Config`.
    function initialize(Config calldata config_) external initializer {
        if (
            address(config_.token) == address(0) || config_.walletBeacon == address(0)
                || address(config_.timelock) == address(0) || address(config_.fundsTimelock) == address(0)
                || address(config_.governor) == address(0) || config_.treasury == address(0)
        ) revert ZeroAddress();
        if (config_.maxFeeBps > BPS) revert InvalidMaxFee(config_.maxFeeBps);
        if (config_.maxExposureBps == 0 || config_.maxExposureBps > BPS) {
            revert InvalidExposure(config_.maxExposureBps);
        }
        RegistryStorage storage $ = _storage();
        $.config = config_;
        $.maxExposureBps = config_.maxExposureBps;
        $.binder = msg.sender;
        _checkUnbonding(config_.unbondingPeriod);
    }

    /// @inheritdoc IHubRegistry
    function bindEscrow(address escrow_) external {
        RegistryStorage storage $ = _storage();
        if (msg.sender != $.binder || msg.sender == address(0)) revert NotBinder(msg.sender);
        if (escrow_ == address(0)) revert ZeroAddress();
        $.escrow = escrow_;
        $.binder = address(0);
        emit EscrowBound(escrow_);
    }

    // ---------------------------------------------------------------- operators

    /// @inheritdoc IHubRegistry
    function register(address signer, uint16 feeBps, string calldata endpoint, uint256 deposit)
        external
        returns (address hub)
    {
        RegistryStorage storage $ = _storage();
        Config storage c = $.config;
        if (signer == address(0)) revert ZeroAddress();
        if (feeBps > c.maxFeeBps) revert FeeTooHigh(feeBps, c.maxFeeBps);
        if (deposit < c.minDeposit) revert DepositTooSmall(deposit, c.minDeposit);
        // The book keeps deposits in 96 bits: 79 billion tokens, more than the supply.
        if (deposit > type(uint96).max) revert DepositTooLarge(deposit);
        _checkEndpoint(endpoint);

        hub = address(
            new BeaconProxy(c.walletBeacon, abi.encodeCall(IHubWallet.initialize, (this, c.token, deposit)))
        );
        Hub storage h = $.hubs[hub];
        h.operator = msg.sender;
        h.state = HubState.Active;
        h.feeBps = feeBps;
        h.signer = signer;
        // forge-lint: disable-next-line(unsafe-typecast) checked against type(uint96).max above
        h.deposit = uint96(deposit);
        // Never zero from here on: opening and closing jobs write a warm, non-zero slot.
        // forge-lint: disable-next-line(unsafe-typecast) block timestamps fit 40 bits for 30,000 years
        h.lastClosedAt = uint40(block.timestamp);
        h.endpoint = endpoint;
        $.hubCount += 1;
        emit HubRegistered(hub, msg.sender, signer, feeBps, deposit, endpoint);
        c.token.safeTransferFrom(msg.sender, hub, deposit);
    }

    /// @inheritdoc IHubRegistry
    function setSigner(address hub, address signer) external {
        Hub storage h = _operated(hub);
        if (signer == address(0)) revert ZeroAddress();
        if (h.state != HubState.Active && h.state != HubState.Exiting) revert WrongState(hub, h.state);
        uint16 version = h.signerVersion;
        _storage().pastSigners[hub][version] = h.signer;
        h.signer = signer;
        h.signerVersion = version + 1;
        emit SignerChanged(hub, signer, version + 1);
    }

    /// @inheritdoc IHubRegistry
    function setEndpoint(address hub, string calldata endpoint) external {
        Hub storage h = _operated(hub);
        _checkEndpoint(endpoint);
        h.endpoint = endpoint;
        emit EndpointChanged(hub, endpoint);
    }

    /// @inheritdoc IHubRegistry
    function announceExit(address hub) external {
        Hub storage h = _operated(hub);
        if (h.state != HubState.Active) revert WrongState(hub, h.state);
        // forge-lint: disable-next-line(unsafe-typecast) unbonding and vote lengths are far below 2^40 s
        uint40 exitAt = uint40(block.timestamp + effectiveUnbonding());
        h.state = HubState.Exiting;
        h.exitAt = exitAt;
        emit ExitAnnounced(hub, uint64(exitAt));
    }

    /// @inheritdoc IHubRegistry
    function completeExit(address hub) external {
        Hub storage h = _operated(hub);
        if (h.state != HubState.Exiting) revert WrongState(hub, h.state);
        if (h.openJobs != 0) revert JobsStillOpen(hub, h.openJobs);
        // Checked against the wait as governance has it now, not only as it was at the announcement.
        uint256 wait = effectiveUnbonding();
        uint256 until = h.exitAt;
        if (uint256(h.lastClosedAt) + wait > until) until = uint256(h.lastClosedAt) + wait;
        if (block.timestamp < until) {
            // forge-lint: disable-next-line(unsafe-typecast) timestamps plus bounded waits fit 64 bits
            revert StillUnbonding(hub, uint64(until));
        }
        h.state = HubState.Exited;
        h.deposit = 0;
        uint256 amount = IHubWallet(hub).releaseDeposit(h.operator);
        emit ExitCompleted(hub, amount);
    }

    // ---------------------------------------------------------------- DAO

    /// @inheritdoc IHubRegistry
    function blacklist(address hub, bytes32 evidenceJobId) external {
        RegistryStorage storage $ = _storage();
        if (msg.sender != address($.config.timelock)) revert NotTimelock(msg.sender);
        Hub storage h = $.hubs[hub];
        if (h.state == HubState.None) revert UnknownHub(hub);
        if (h.state != HubState.Active && h.state != HubState.Exiting) revert WrongState(hub, h.state);
        h.state = HubState.Blacklisted;
        h.deposit = 0;
        address treasury = $.config.treasury;
        uint256 amount = IHubWallet(hub).expropriate(treasury);
        uint256 lotId = IDaoTreasury(treasury).recordExpropriation(hub, amount);
        emit HubBlacklisted(hub, evidenceJobId, amount, lotId);
    }

    /// @inheritdoc IHubRegistry
    function setExposureCap(uint16 maxExposureBps) external {
        RegistryStorage storage $ = _storage();
        if (msg.sender != address($.config.timelock)) revert NotTimelock(msg.sender);
        if (maxExposureBps == 0 || maxExposureBps > BPS) revert InvalidExposure(maxExposureBps);
        $.maxExposureBps = maxExposureBps;
        $.config.maxExposureBps = maxExposureBps;
        emit ExposureCapSet(maxExposureBps);
    }

    /// @inheritdoc IHubRegistry
    function setUnbondingPeriod(uint64 unbondingPeriod) external {
        RegistryStorage storage $ = _storage();
        if (msg.sender != address($.config.timelock)) revert NotTimelock(msg.sender);
        _checkUnbonding(unbondingPeriod);
        $.config.unbondingPeriod = unbondingPeriod;
        emit UnbondingPeriodSet(unbondingPeriod);
    }

    // ---------------------------------------------------------------- escrow

    /// @inheritdoc IHubRegistry
    function reserve(address hub, uint256 amount) external returns (uint16 signerVersion, uint16 feeBps) {
        RegistryStorage storage $ = _storage();
        if (msg.sender != $.escrow) revert NotEscrow(msg.sender);
        Hub storage h = $.hubs[hub];
        if (h.state != HubState.Active) revert WrongState(hub, h.state);
        uint256 open = uint256(h.openEscrow) + amount;
        uint256 cap = uint256(h.deposit) * $.maxExposureBps / BPS;
        if (open > cap) revert ExposureCapExceeded(hub, open, cap);
        if (h.openJobs == type(uint24).max) revert TooManyOpenJobs(hub);
        unchecked {
            // Checked just above.
            h.openJobs += 1;
        }
        // forge-lint: disable-next-line(unsafe-typecast) open <= cap <= deposit < 2^96
        h.openEscrow = uint96(open);
        return (h.signerVersion, h.feeBps);
    }

    /// @inheritdoc IHubRegistry
    function release(address hub, uint256 amount, uint16 signerVersion)
        external
        returns (HubState state, address signer)
    {
        RegistryStorage storage $ = _storage();
        if (msg.sender != $.escrow) revert NotEscrow(msg.sender);
        Hub storage h = $.hubs[hub];
        unchecked {
            // Every release matches an earlier reserve of the same amount (the escrow calls each
            // once per job, with the job's own amount): neither can underflow.
            h.openJobs -= 1;
            // forge-lint: disable-next-line(unsafe-typecast) amount was reserved, so it fits
            h.openEscrow -= uint96(amount);
        }
        // forge-lint: disable-next-line(unsafe-typecast) block timestamps fit 40 bits for 30,000 years
        h.lastClosedAt = uint40(block.timestamp);
        state = h.state;
        signer = signerVersion == h.signerVersion ? h.signer : $.pastSigners[hub][signerVersion];
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IHubRegistry
    function hubTerms(address hub) external view returns (HubState state, address signer, uint16 feeBps) {
        Hub storage h = _storage().hubs[hub];
        return (h.state, h.signer, h.feeBps);
    }

    /// @inheritdoc IHubRegistry
    function signerOf(address hub, uint16 signerVersion) external view returns (address) {
        RegistryStorage storage $ = _storage();
        Hub storage h = $.hubs[hub];
        if (signerVersion == h.signerVersion) return h.signer;
        if (signerVersion > h.signerVersion) return address(0);
        return $.pastSigners[hub][signerVersion];
    }

    /// @inheritdoc IHubRegistry
    function operatorOf(address hub) external view returns (address) {
        return _storage().hubs[hub].operator;
    }

    /// @inheritdoc IHubRegistry
    function hubInfo(address hub) external view returns (Hub memory) {
        return _storage().hubs[hub];
    }

    /// @inheritdoc IHubRegistry
    function exposureCap(address hub) external view returns (uint256) {
        RegistryStorage storage $ = _storage();
        return uint256($.hubs[hub].deposit) * $.maxExposureBps / BPS;
    }

    /// @inheritdoc IHubRegistry
    function config() external view returns (Config memory) {
        return _storage().config;
    }

    /// @notice The escrow bound to the registry.
    /// @return The JobEscrow proxy, or zero before binding.
    function escrow() external view returns (address) {
        return _storage().escrow;
    }

    /// @inheritdoc IHubRegistry
    function hubCount() external view returns (uint256) {
        return _storage().hubCount;
    }

    /// @inheritdoc IHubRegistry
    function voteDuration() public view returns (uint256) {
        Config storage c = _storage().config;
        return c.governor.votingDelay() + c.governor.votingPeriod() + c.timelock.getMinDelay();
    }

    /// @inheritdoc IHubRegistry
    function effectiveUnbonding() public view returns (uint256) {
        uint256 wait = _storage().config.unbondingPeriod;
        uint256 vote = voteDuration() + UNBONDING_MARGIN;
        return vote > wait ? vote : wait;
    }

    // ---------------------------------------------------------------- internals

    function _checkUnbonding(uint64 unbondingPeriod) private view {
        uint256 required = voteDuration() + UNBONDING_MARGIN;
        if (unbondingPeriod <= required) revert UnbondingTooShort(unbondingPeriod, required);
    }

    function _operated(address hub) private view returns (Hub storage h) {
        h = _storage().hubs[hub];
        if (h.state == HubState.None) revert UnknownHub(hub);
        if (msg.sender != h.operator) revert NotOperator(msg.sender);
    }

    function _checkEndpoint(string calldata endpoint) private pure {
        uint256 len = bytes(endpoint).length;
        if (len == 0 || len > MAX_ENDPOINT_LENGTH) revert InvalidEndpoint();
    }

    function _authorizeUpgrade(address) internal view override {
        if (msg.sender != address(_storage().config.fundsTimelock)) revert NotFundsTimelock(msg.sender);
    }

    function _storage() private pure returns (RegistryStorage storage $) {
        assembly {
            $.slot := STORAGE_SLOT
        }
    }
}
