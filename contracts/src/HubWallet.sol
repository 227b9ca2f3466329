// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IHubRegistry} from "./interfaces/IHubRegistry.sol";

/// @title HubWallet
/// @notice One per hub, behind a BeaconProxy whose beacon the DAO's timelock owns. Holds the hub's frozen
///         deposit and receives its commission from settled jobs. The operator withdraws earnings at any
///         time; the deposit moves only on the registry's word: back to the operator after an unbonded
///         exit, or to the DAO treasury when the DAO blacklists the hub.
contract HubWallet is Initializable {
    using SafeERC20 for IERC20;

    /// @custom:storage-location erc7201:fog.storage.HubWallet
    struct WalletStorage {
        IHubRegistry registry;
        IERC20 token;
        uint256 deposit;
    }

    // keccak256(abi.encode(uint256(keccak256("fog.storage.HubWallet")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant STORAGE_SLOT =
        0xab57913d77403add542987f2f0685da9a9f0a90a44f109bf661204d1777b3a00;

    /// @notice The caller is not the registry.
    error NotRegistry(address caller);
    /// @notice The caller is not the hub's operator.
    error NotOperator(address caller);
    /// @notice The withdrawal asks for more than the earnings.
    error InsufficientEarnings(uint256 requested, uint256 available);
    /// @notice A zero address was given where a real one is needed.
    error ZeroAddress();

    /// @notice The operator withdrew `amount` of earnings to `to`.
    event EarningsWithdrawn(address indexed to, uint256 amount);
    /// @notice The deposit was returned to the operator after an exit.
    event DepositReleased(address indexed to, uint256 amount);
    /// @notice The deposit was taken by the DAO into `treasury`.
    event DepositExpropriated(address indexed treasury, uint256 amount);

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Sets up a new hub's wallet; called by the registry through the BeaconProxy constructor.
    /// @param registry_ The HubRegistry.
    /// @param token_ The FogToken.
    /// @param deposit_ The deposit the registry transfers in right after (frozen).
    function initialize(IHubRegistry registry_, IERC20 token_, uint256 deposit_) external initializer {
        if (address(registry_) == address(0) || address(token_) == address(0)) revert ZeroAddress();
        WalletStorage storage $ = _storage();
        $.registry = registry_;
        $.token = token_;
        $.deposit = deposit_;
    }

    /// @notice The frozen deposit.
    /// @return The deposit in token base units.
    function deposit() external view returns (uint256) {
        return _storage().deposit;
    }

    /// @notice What the operator can withdraw now: everything above the frozen deposit.
    /// @return The withdrawable earnings.
    function earnings() public view returns (uint256) {
        WalletStorage storage $ = _storage();
        uint256 balance = $.token.balanceOf(address(this));
        return balance > $.deposit ? balance - $.deposit : 0;
    }

    /// @notice The registry this wallet obeys.
    /// @return The HubRegistry.
    function registry() external view returns (IHubRegistry) {
        return _storage().registry;
    }

    /// @notice Withdraws earnings; the frozen deposit cannot be touched this way.
    /// @param to Receiver of the tokens.
    /// @param amount How much to withdraw.
    function withdrawEarnings(address to, uint256 amount) external {
        WalletStorage storage $ = _storage();
        if (msg.sender != $.registry.operatorOf(address(this))) revert NotOperator(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        uint256 available = earnings();
        if (amount > available) revert InsufficientEarnings(amount, available);
        emit EarningsWithdrawn(to, amount);
        $.token.safeTransfer(to, amount);
    }

    /// @notice Returns the whole deposit to `to` after an unbonded exit. Registry only.
    /// @param to The operator.
    /// @return amount The deposit released.
    function releaseDeposit(address to) external returns (uint256 amount) {
        amount = _takeDeposit();
        emit DepositReleased(to, amount);
        _storage().token.safeTransfer(to, amount);
    }

    /// @notice Moves the whole deposit into the DAO treasury. Registry only, on a blacklist vote.
    /// @param treasury The DaoTreasury.
    /// @return amount The deposit taken.
    function expropriate(address treasury) external returns (uint256 amount) {
        amount = _takeDeposit();
        emit DepositExpropriated(treasury, amount);
        _storage().token.safeTransfer(treasury, amount);
    }

    function _takeDeposit() private returns (uint256 amount) {
        WalletStorage storage $ = _storage();
        if (msg.sender != address($.registry)) revert NotRegistry(msg.sender);
        amount = $.deposit;
        $.deposit = 0;
    }

    function _storage() private pure returns (WalletStorage storage $) {
        assembly {
            $.slot := STORAGE_SLOT
        }
    }
}
