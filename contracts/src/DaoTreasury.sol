// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IDaoTreasury} from "./interfaces/IDaoTreasury.sol";

/// @title DaoTreasury
/// @notice Receives the deposits of blacklisted hubs and keeps each one frozen for a fixed period. The
///         freeze is SONM's protection against a greedy DAO: the token may fall while the funds are
///         frozen, so expropriating honest hubs does not pay. Only the DAO's timelock spends a lot, and
///         only after its release time. Upgradeable (UUPS) by the timelock only.
contract DaoTreasury is Initializable, UUPSUpgradeable, IDaoTreasury {
    using SafeERC20 for IERC20;

    /// @notice One expropriated deposit.
    struct Lot {
        address hub;
        uint64 releaseAt;
        uint256 amount;
        uint256 remaining;
    }

    /// @custom:storage-location erc7201:fog.storage.DaoTreasury
    struct TreasuryStorage {
        IERC20 token;
        address timelock;
        address registry;
        uint64 freezePeriod;
        address binder;
        uint256 lockedTotal;
        Lot[] lots;
    }

    // keccak256(abi.encode(uint256(keccak256("fog.storage.DaoTreasury")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0xb131566274986ead34413bb910d06db7e76b59e85717b099965860302c048100;
    /// @notice Shortest freeze accepted.
    uint64 public constant MIN_FREEZE_PERIOD = 1 days;

    error ZeroAddress();
    error FreezeTooShort(uint64 freezePeriod);
    error NotRegistry(address caller);
    error NotBinder(address caller);
    error NotTimelock(address caller);
    error FundsNotReceived(uint256 expected, uint256 unaccounted);
    error UnknownLot(uint256 lotId);
    error StillFrozen(uint256 lotId, uint64 releaseAt);
    error AmountExceedsLot(uint256 lotId, uint256 amount, uint256 remaining);

    event RegistryBound(address indexed registry);
    event LotFrozen(uint256 indexed lotId, address indexed hub, uint256 amount, uint64 releaseAt);
    event LotSpent(uint256 indexed lotId, address indexed to, uint256 amount);

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Sets the treasury up. The registry is bound afterwards by the same account, once: the
    ///         registry and the treasury name each other, so one of them must exist first.
    /// @param token_ The FogToken.
    /// @param timelock_ The DAO's timelock: spender and upgrade authority.
    /// @param freezePeriod_ How long each lot stays frozen (at least a day).
    function initialize(IERC20 token_, address timelock_, uint64 freezePeriod_) external initializer {
        if (address(token_) == address(0) || timelock_ == address(0)) revert ZeroAddress();
        if (freezePeriod_ < MIN_FREEZE_PERIOD) revert FreezeTooShort(freezePeriod_);
        TreasuryStorage storage $ = _storage();
        $.token = token_;
        $.timelock = timelock_;
        $.freezePeriod = freezePeriod_;
        $.binder = msg.sender;
    }

    /// @notice Names the HubRegistry, the only source of expropriations. Once, by the initialising account.
    /// @param registry_ The HubRegistry.
    function bindRegistry(address registry_) external {
        TreasuryStorage storage $ = _storage();
        if (msg.sender != $.binder) revert NotBinder(msg.sender);
        if (registry_ == address(0)) revert ZeroAddress();
        $.registry = registry_;
        $.binder = address(0);
        emit RegistryBound(registry_);
    }

    /// @inheritdoc IDaoTreasury
    function recordExpropriation(address hub, uint256 amount) external returns (uint256 lotId) {
        TreasuryStorage storage $ = _storage();
        if (msg.sender != $.registry || msg.sender == address(0)) revert NotRegistry(msg.sender);
        uint256 unaccounted = $.token.balanceOf(address(this)) - $.lockedTotal;
        if (unaccounted < amount) revert FundsNotReceived(amount, unaccounted);
        uint64 releaseAt = uint64(block.timestamp) + $.freezePeriod;
        lotId = $.lots.length;
        $.lots.push(Lot({hub: hub, releaseAt: releaseAt, amount: amount, remaining: amount}));
        $.lockedTotal += amount;
        emit LotFrozen(lotId, hub, amount, releaseAt);
    }

    /// @notice Spends from a released lot. Timelock only, i.e. by a passed DAO proposal.
    /// @param lotId The lot.
    /// @param to Receiver.
    /// @param amount How much.
    function spend(uint256 lotId, address to, uint256 amount) external {
        TreasuryStorage storage $ = _storage();
        if (msg.sender != $.timelock) revert NotTimelock(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        if (lotId >= $.lots.length) revert UnknownLot(lotId);
        Lot storage entry = $.lots[lotId];
        if (block.timestamp < entry.releaseAt) revert StillFrozen(lotId, entry.releaseAt);
        if (amount > entry.remaining) revert AmountExceedsLot(lotId, amount, entry.remaining);
        entry.remaining -= amount;
        $.lockedTotal -= amount;
        emit LotSpent(lotId, to, amount);
        $.token.safeTransfer(to, amount);
    }

    /// @notice One lot.
    /// @param lotId The lot.
    /// @return The lot's record.
    function lot(uint256 lotId) external view returns (Lot memory) {
        TreasuryStorage storage $ = _storage();
        if (lotId >= $.lots.length) revert UnknownLot(lotId);
        return $.lots[lotId];
    }

    /// @notice How many lots exist.
    /// @return The count.
    function lotCount() external view returns (uint256) {
        return _storage().lots.length;
    }

    /// @notice Tokens held for lots not yet spent.
    /// @return The total.
    function lockedTotal() external view returns (uint256) {
        return _storage().lockedTotal;
    }

    /// @notice Token, timelock, registry and freeze period.
    /// @return token The FogToken.
    /// @return timelock The DAO timelock.
    /// @return registry The HubRegistry.
    /// @return freezePeriod The freeze period in seconds.
    function wiring()
        external
        view
        returns (IERC20 token, address timelock, address registry, uint64 freezePeriod)
    {
        TreasuryStorage storage $ = _storage();
        return ($.token, $.timelock, $.registry, $.freezePeriod);
    }

    function _authorizeUpgrade(address) internal view override {
        if (msg.sender != _storage().timelock) revert NotTimelock(msg.sender);
    }

    function _storage() private pure returns (TreasuryStorage storage $) {
        assembly {
            $.slot := STORAGE_SLOT
        }
    }
}
