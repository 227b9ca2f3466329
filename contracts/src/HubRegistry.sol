// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {BeaconProxy} from "@openzeppelin/contracts/proxy/beacon/BeaconProxy.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {HubWallet} from "./HubWallet.sol";
import {IDaoTreasury} from "./interfaces/IDaoTreasury.sol";
import {IHubRegistry} from "./interfaces/IHubRegistry.sol";

/// @title HubRegistry
/// @notice Hubs register here by creating their HubWallet and locking a deposit that stays frozen while
///         they are active. Leaving takes an unbonding period longer than a whole DAO vote (voting delay +
///         voting period + timelock delay), so a hub cannot run from a pending blacklist vote; a blacklist
///         sends the deposit to the DaoTreasury. Upgradeable (UUPS) by the DAO's timelock only.
contract HubRegistry is Initializable, UUPSUpgradeable, IHubRegistry {
    using SafeERC20 for IERC20;

    /// @notice Everything the registry knows of one hub. The deposit itself lives in the HubWallet.
    struct Hub {
        address operator;
        HubState state;
        uint16 feeBps;
        uint64 exitAt;
        address signer;
        string endpoint;
    }

    /// @notice Parameters fixed at initialisation.
    struct Config {
        IERC20 token;
        address walletBeacon;
        TimelockController timelock;
        IGovernor governor;
        address treasury;
        uint256 minDeposit;
        uint64 unbondingPeriod;
        uint16 maxFeeBps;
    }

    /// @custom:storage-location erc7201:fog.storage.HubRegistry
    struct RegistryStorage {
        Config config;
        mapping(address hub => Hub) hubs;
        uint256 hubCount;
    }

    // keccak256(abi.encode(uint256(keccak256("fog.storage.HubRegistry")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0x6049eb1fd0118f7c564f31206116ff65c9a7490fc17121fd5c3cd35a4fde2c00;
    /// @notice Commission can never exceed 100%.
    uint16 public constant BPS = 10_000;
    /// @notice Longest endpoint URL accepted.
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;

    error ZeroAddress();
    /// @notice The unbonding period must outlast a whole DAO vote.
    error UnbondingTooShort(uint64 unbondingPeriod, uint256 voteDuration);
    error FeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    error InvalidMaxFee(uint16 maxFeeBps);
    error DepositTooSmall(uint256 deposit, uint256 minDeposit);
    error InvalidEndpoint();
    error NotOperator(address caller);
    error NotTimelock(address caller);
    error UnknownHub(address hub);
    /// @notice The hub is not in a state that allows this.
    error WrongState(address hub, HubState state);
    error StillUnbonding(address hub, uint64 exitAt);

    event HubRegistered(
        address indexed hub,
        address indexed operator,
        address signer,
        uint16 feeBps,
        uint256 deposit,
        string endpoint
    );
    event SignerChanged(address indexed hub, address signer);
    event EndpointChanged(address indexed hub, string endpoint);
    event ExitAnnounced(address indexed hub, uint64 exitAt);
    event ExitCompleted(address indexed hub, uint256 depositReturned);
    /// @notice The DAO blacklisted `hub`; its deposit went to the treasury as `lotId`.
    event HubBlacklisted(address indexed hub, bytes32 indexed evidenceJobId, uint256 deposit, uint256 lotId);

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Sets the registry up. Checks that the unbonding period outlasts a DAO vote.
    /// @param config_ Token, wallet beacon, timelock, governor, treasury, minimum deposit, unbonding
    ///        period (seconds) and the highest commission allowed (basis points).
    function initialize(Config calldata config_) external initializer {
        if (
            address(config_.token) == address(0) || config_.walletBeacon == address(0)
                || address(config_.timelock) == address(0) || address(config_.governor) == address(0)
                || config_.treasury == address(0)
        ) revert ZeroAddress();
        if (config_.maxFeeBps > BPS) revert InvalidMaxFee(config_.maxFeeBps);
        RegistryStorage storage $ = _storage();
        $.config = config_;
        uint256 vote = voteDuration();
        if (config_.unbondingPeriod <= vote) revert UnbondingTooShort(config_.unbondingPeriod, vote);
    }

    // ---------------------------------------------------------------- operators

    /// @notice Registers a hub: creates its HubWallet and moves `deposit` tokens from the caller into it.
    /// @param signer Key that will sign the hub's assignments.
    /// @param feeBps Commission in basis points of what miners charge.
    /// @param endpoint The hub's public URL (1-256 bytes).
    /// @param deposit Tokens to lock, at least the minimum deposit; the caller must have approved them.
    /// @return hub The hub's id: its HubWallet address.
    function register(address signer, uint16 feeBps, string calldata endpoint, uint256 deposit)
        external
        returns (address hub)
    {
        RegistryStorage storage $ = _storage();
        Config storage c = $.config;
        if (signer == address(0)) revert ZeroAddress();
        if (feeBps > c.maxFeeBps) revert FeeTooHigh(feeBps, c.maxFeeBps);
        if (deposit < c.minDeposit) revert DepositTooSmall(deposit, c.minDeposit);
        _checkEndpoint(endpoint);

        hub = address(
            new BeaconProxy(c.walletBeacon, abi.encodeCall(HubWallet.initialize, (this, c.token, deposit)))
        );
        $.hubs[hub] = Hub({
            operator: msg.sender,
            state: HubState.Active,
            feeBps: feeBps,
            exitAt: 0,
            signer: signer,
            endpoint: endpoint
        });
        $.hubCount += 1;
        emit HubRegistered(hub, msg.sender, signer, feeBps, deposit, endpoint);
        c.token.safeTransferFrom(msg.sender, hub, deposit);
    }

    /// @notice Rotates the key that signs the hub's assignments. Assignments signed by the old key stop
    ///         counting for settlement.
    /// @param hub The hub.
    /// @param signer The new signing key.
    function setSigner(address hub, address signer) external {
        Hub storage h = _operated(hub);
        if (signer == address(0)) revert ZeroAddress();
        if (h.state != HubState.Active && h.state != HubState.Exiting) revert WrongState(hub, h.state);
        h.signer = signer;
        emit SignerChanged(hub, signer);
    }

    /// @notice Changes the hub's public URL.
    /// @param hub The hub.
    /// @param endpoint The new URL (1-256 bytes).
    function setEndpoint(address hub, string calldata endpoint) external {
        Hub storage h = _operated(hub);
        _checkEndpoint(endpoint);
        h.endpoint = endpoint;
        emit EndpointChanged(hub, endpoint);
    }

    /// @notice Starts leaving: the hub takes no new jobs, and its deposit unlocks after the unbonding
    ///         period, never sooner than a whole DAO vote from now.
    /// @param hub The hub.
    function announceExit(address hub) external {
        Hub storage h = _operated(hub);
        if (h.state != HubState.Active) revert WrongState(hub, h.state);
        uint256 wait = _storage().config.unbondingPeriod;
        // Governance settings can change after initialisation; the live vote length always bounds the wait.
        uint256 vote = voteDuration() + 1;
        if (vote > wait) wait = vote;
        // forge-lint: disable-next-line(unsafe-typecast) unbonding and vote lengths are uint64/uint48 seconds
        uint64 exitAt = uint64(block.timestamp + wait);
        h.state = HubState.Exiting;
        h.exitAt = exitAt;
        emit ExitAnnounced(hub, exitAt);
    }

    /// @notice Finishes leaving after the unbonding period: the deposit returns to the operator.
    /// @param hub The hub.
    function completeExit(address hub) external {
        Hub storage h = _operated(hub);
        if (h.state != HubState.Exiting) revert WrongState(hub, h.state);
        if (block.timestamp < h.exitAt) revert StillUnbonding(hub, h.exitAt);
        h.state = HubState.Exited;
        uint256 amount = HubWallet(hub).releaseDeposit(h.operator);
        emit ExitCompleted(hub, amount);
    }

    // ---------------------------------------------------------------- DAO

    /// @notice Blacklists a cheating hub and expropriates its frozen deposit into the treasury.
    ///         Timelock only: it runs as the result of a passed DAO proposal.
    /// @param hub The hub.
    /// @param evidenceJobId The job whose on-chain receipts are the evidence.
    function blacklist(address hub, bytes32 evidenceJobId) external {
        RegistryStorage storage $ = _storage();
        if (msg.sender != address($.config.timelock)) revert NotTimelock(msg.sender);
        Hub storage h = $.hubs[hub];
        if (h.state == HubState.None) revert UnknownHub(hub);
        if (h.state != HubState.Active && h.state != HubState.Exiting) revert WrongState(hub, h.state);
        h.state = HubState.Blacklisted;
        address treasury = $.config.treasury;
        uint256 amount = HubWallet(hub).expropriate(treasury);
        uint256 lotId = IDaoTreasury(treasury).recordExpropriation(hub, amount);
        emit HubBlacklisted(hub, evidenceJobId, amount, lotId);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IHubRegistry
    function hubTerms(address hub) external view returns (HubState state, address signer, uint16 feeBps) {
        Hub storage h = _storage().hubs[hub];
        return (h.state, h.signer, h.feeBps);
    }

    /// @inheritdoc IHubRegistry
    function operatorOf(address hub) external view returns (address) {
        return _storage().hubs[hub].operator;
    }

    /// @notice Everything the registry knows about `hub`.
    /// @param hub The hub.
    /// @return The hub's record.
    function hubInfo(address hub) external view returns (Hub memory) {
        return _storage().hubs[hub];
    }

    /// @notice The registry's configuration.
    /// @return The configuration.
    function config() external view returns (Config memory) {
        return _storage().config;
    }

    /// @notice How many hubs ever registered.
    /// @return The count.
    function hubCount() external view returns (uint256) {
        return _storage().hubCount;
    }

    /// @notice Longest time from a proposal's creation to its execution: voting delay + voting period +
    ///         timelock delay, in seconds (the token's clock is the timestamp).
    /// @return The duration in seconds.
    function voteDuration() public view returns (uint256) {
        Config storage c = _storage().config;
        return c.governor.votingDelay() + c.governor.votingPeriod() + c.timelock.getMinDelay();
    }

    // ---------------------------------------------------------------- internals

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
        if (msg.sender != address(_storage().config.timelock)) revert NotTimelock(msg.sender);
    }

    function _storage() private pure returns (RegistryStorage storage $) {
        assembly {
            $.slot := STORAGE_SLOT
        }
    }
}
