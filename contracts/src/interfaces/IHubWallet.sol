// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IFogErrors} from "./IFogErrors.sol";
import {IHubRegistry} from "./IHubRegistry.sol";

/// @title IHubWallet
/// @notice One per hub: holds its frozen deposit and receives its commission. The operator withdraws
///         earnings at any time; the deposit moves only on the registry's word.
interface IHubWallet is IFogErrors {
    /// @notice The caller is not the registry.
    error NotRegistry(address caller);
    /// @notice The caller is not the hub's operator.
    error NotOperator(address caller);
    /// @notice The withdrawal asks for more than the earnings.
    error InsufficientEarnings(uint256 requested, uint256 available);

    /// @notice The operator withdrew `amount` of earnings to `to`.
    event EarningsWithdrawn(address indexed to, uint256 amount);
    /// @notice The deposit was returned to the operator after an exit.
    event DepositReleased(address indexed to, uint256 amount);
    /// @notice The deposit was taken by the DAO into `treasury`.
    event DepositExpropriated(address indexed treasury, uint256 amount);

    /// @notice Sets up a new hub's wallet; called by the registry through the BeaconProxy constructor.
    /// @param registry_ The HubRegistry.
    /// @param token_ The FogToken.
    /// @param deposit_ The deposit the registry transfers in right after (frozen).
    function initialize(IHubRegistry registry_, IERC20 token_, uint256 deposit_) external;

    /// @notice The frozen deposit.
    /// @return The deposit in token base units.
    function deposit() external view returns (uint256);

    /// @notice What the operator can withdraw now: everything above the frozen deposit.
    /// @return The withdrawable earnings.
    function earnings() external view returns (uint256);

    /// @notice The registry this wallet obeys.
    /// @return The HubRegistry.
    function registry() external view returns (IHubRegistry);

    /// @notice Withdraws earnings; the frozen deposit cannot be touched this way.
    /// @param to Receiver of the tokens.
    /// @param amount How much to withdraw.
    function withdrawEarnings(address to, uint256 amount) external;

    /// @notice Returns the whole deposit to `to` after an unbonded exit. Registry only.
    /// @param to The operator.
    /// @return amount The deposit released.
    function releaseDeposit(address to) external returns (uint256 amount);

    /// @notice Moves the whole deposit into the DAO treasury. Registry only, on a blacklist vote.
    /// @param treasury The DaoTreasury.
    /// @return amount The deposit taken.
    function expropriate(address treasury) external returns (uint256 amount);
}
