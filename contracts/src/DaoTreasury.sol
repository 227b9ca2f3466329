// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IDaoTreasury} from "./interfaces/IDaoTreasury.sol";

/// @title DaoTreasury
/// @notice Receives the deposits of blacklisted hubs and keeps each one frozen for a fixed period. The
///         freeze is SONM's protection against a greedy DAO: the token may fall while the funds are
///         frozen, so expropriating honest hubs does not pay. Only the DAO's timelock spends a lot, and
///         only after its release time. Upgradeable (UUPS) only by the funds timelock, whose delay
///         outlasts the freeze, and never while a lot is frozen: no vote shortens a freeze.
contract DaoTreasury is Initializable, UUPSUpgradeable, IDaoTreasury {
    using SafeERC20 for IERC20;

    /// @custom:storage-location erc7201:fog.storage.DaoTreasury
    struct TreasuryStorage {
        IERC20 token;
        address timelock;
        address registry;
        uint64 freezePeriod;
        uint64 frozenUntil;
        address binder;
        address fundsTimelock;
        uint256 lockedTotal;
        Lot[] lots;
    }

    // keccak256(abi.encode(uint256(keccak256("fog.storage.DaoTreasury")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0xb131566274986ead34413bb910d06db7e76b59e85717b099965860302c048100;
    /// @notice Shortest freeze accepted.
    uint64 public constant MIN_FREEZE_PERIOD = 1 days;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @inheritdoc IDaoTreasury
    function initialize(IERC20 token_, address timelock_, address fundsTimelock_, uint64 freezePeriod_)
        external
        initializer
    {
        if (address(token_) == address(0) || timelock_ == address(0) || fundsTimelock_ == address(0)) {
            revert ZeroAddress();
        }
        if (freezePeriod_ < MIN_FREEZE_PERIOD) revert FreezeTooShort(freezePeriod_);
        uint256 delay = TimelockController(payable(fundsTimelock_)).getMinDelay();
        if (delay <= freezePeriod_) revert UpgradeDelayTooShort(delay, freezePeriod_);
        TreasuryStorage storage $ = _storage();
        $.token = token_;
        $.timelock = timelock_;
        $.fundsTimelock = fundsTimelock_;
        $.freezePeriod = freezePeriod_;
        $.binder = msg.sender;
    }

    /// @inheritdoc IDaoTreasury
    function bindRegistry(address registry_) external {
        TreasuryStorage storage $ = _storage();
        if (msg.sender != $.binder || msg.sender == address(0)) revert NotBinder(msg.sender);
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
        if (releaseAt > $.frozenUntil) $.frozenUntil = releaseAt;
        emit LotFrozen(lotId, hub, amount, releaseAt);
    }

    /// @inheritdoc IDaoTreasury
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

    /// @inheritdoc IDaoTreasury
    function lot(uint256 lotId) external view returns (Lot memory) {
        TreasuryStorage storage $ = _storage();
        if (lotId >= $.lots.length) revert UnknownLot(lotId);
        return $.lots[lotId];
    }

    /// @inheritdoc IDaoTreasury
    function lotCount() external view returns (uint256) {
        return _storage().lots.length;
    }

    /// @inheritdoc IDaoTreasury
    function lockedTotal() external view returns (uint256) {
        return _storage().lockedTotal;
    }

    /// @inheritdoc IDaoTreasury
    function frozenUntil() external view returns (uint64) {
        return _storage().frozenUntil;
    }

    /// @inheritdoc IDaoTreasury
    function wiring()
        external
        view
        returns (IERC20 token, address timelock, address fundsTimelock, address registry, uint64 freezePeriod)
    {
        TreasuryStorage storage $ = _storage();
        return ($.token, $.timelock, $.fundsTimelock, $.registry, $.freezePeriod);
    }

    function _authorizeUpgrade(address) internal view override {
        TreasuryStorage storage $ = _storage();
        if (msg.sender != $.fundsTimelock) revert NotFundsTimelock(msg.sender);
        if (block.timestamp < $.frozenUntil) revert FundsFrozen($.frozenUntil);
    }

    function _storage() private pure returns (TreasuryStorage storage $) {
        assembly {
            $.slot := STORAGE_SLOT
        }
    }
}
