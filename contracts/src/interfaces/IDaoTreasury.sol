// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IFogErrors} from "./IFogErrors.sol";

/// @title IDaoTreasury
/// @notice Keeps the deposits of blacklisted hubs frozen for a fixed period, then lets the DAO's timelock
///         spend them (for example to compensate a cheated hub's buyers and miners). No vote shortens the
///         freeze of funds already seized: the treasury cannot be upgraded while any lot is still frozen.
interface IDaoTreasury is IFogErrors {
    /// @notice One expropriated deposit.
    /// @param hub The blacklisted hub it came from.
    /// @param releaseAt When it may first be spent.
    /// @param amount What was seized.
    /// @param remaining What is left to spend.
    struct Lot {
        address hub;
        uint64 releaseAt;
        uint256 amount;
        uint256 remaining;
    }

    /// @notice The freeze is shorter than the minimum.
    error FreezeTooShort(uint64 freezePeriod);
    /// @notice The funds timelock's delay does not outlast the freeze.
    error UpgradeDelayTooShort(uint256 delay, uint64 freezePeriod);
    /// @notice Only the registry records expropriations.
    error NotRegistry(address caller);
    /// @notice Only the initialising account binds the registry, once.
    error NotBinder(address caller);
    /// @notice Only the DAO's timelock spends.
    error NotTimelock(address caller);
    /// @notice Only the funds timelock upgrades the treasury.
    error NotFundsTimelock(address caller);
    /// @notice The expropriated tokens did not arrive.
    error FundsNotReceived(uint256 expected, uint256 unaccounted);
    /// @notice No such lot.
    error UnknownLot(uint256 lotId);
    /// @notice The lot is frozen until `releaseAt`.
    error StillFrozen(uint256 lotId, uint64 releaseAt);
    /// @notice The lot holds less than asked.
    error AmountExceedsLot(uint256 lotId, uint256 amount, uint256 remaining);
    /// @notice No upgrade while seized funds are frozen (until `frozenUntil`).
    error FundsFrozen(uint64 frozenUntil);

    /// @notice The registry was bound.
    event RegistryBound(address indexed registry);
    /// @notice A seized deposit was frozen as `lotId` until `releaseAt`.
    event LotFrozen(uint256 indexed lotId, address indexed hub, uint256 amount, uint64 releaseAt);
    /// @notice The DAO spent `amount` of `lotId` to `to`.
    event LotSpent(uint256 indexed lotId, address indexed to, uint256 amount);

    /// @notice Sets the treasury up. The registry is bound afterwards by the same account, once.
    /// @param token_ The FogToken.
    /// @param timelock_ The DAO's timelock: the spender.
    /// @param fundsTimelock_ The longer timelock: the only upgrade authority; its delay must outlast the freeze.
    /// @param freezePeriod_ How long each lot stays frozen (at least a day).
    function initialize(IERC20 token_, address timelock_, address fundsTimelock_, uint64 freezePeriod_)
        external;

    /// @notice Names the HubRegistry, the only source of expropriations. Once, by the initialising account.
    /// @param registry_ The HubRegistry.
    function bindRegistry(address registry_) external;

    /// @notice Records `amount` tokens, already transferred in, as a frozen lot taken from `hub`.
    ///         Registry only.
    /// @param hub The blacklisted hub.
    /// @param amount The expropriated deposit.
    /// @return lotId The new lot's index.
    function recordExpropriation(address hub, uint256 amount) external returns (uint256 lotId);

    /// @notice Spends from a released lot. Timelock only, i.e. by a passed DAO proposal.
    /// @param lotId The lot.
    /// @param to Receiver.
    /// @param amount How much.
    function spend(uint256 lotId, address to, uint256 amount) external;

    /// @notice One lot.
    /// @param lotId The lot.
    /// @return The lot's record.
    function lot(uint256 lotId) external view returns (Lot memory);

    /// @notice How many lots exist.
    /// @return The count.
    function lotCount() external view returns (uint256);

    /// @notice Tokens held for lots not yet spent.
    /// @return The total.
    function lockedTotal() external view returns (uint256);

    /// @notice When the last frozen lot thaws: no upgrade before.
    /// @return Unix time.
    function frozenUntil() external view returns (uint64);

    /// @notice Token, timelocks, registry and freeze period.
    /// @return token The FogToken.
    /// @return timelock The DAO timelock.
    /// @return fundsTimelock The upgrade authority.
    /// @return registry The HubRegistry.
    /// @return freezePeriod The freeze period in seconds.
    function wiring()
        external
        view
        returns (IERC20 token, address timelock, address fundsTimelock, address registry, uint64 freezePeriod);
}
