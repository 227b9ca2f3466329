// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IHubRegistry} from "./interfaces/IHubRegistry.sol";
import {IHubWallet} from "./interfaces/IHubWallet.sol";

/// @title HubWallet
/// @notice One per hub, behind a BeaconProxy whose beacon the DAO's timelock owns. Holds the hub's frozen
///         deposit and receives its commission from settled jobs. The operator withdraws earnings at any
///         time; the deposit moves only on the registry's word: back to the operator after an unbonded
///         exit, or to the DAO treasury when the DAO blacklists the hub.
contract HubWallet is Initializable, IHubWallet {
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

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @inheritdoc IHubWallet
    function initialize(IHubRegistry registry_, IERC20 token_, uint256 deposit_) external initializer {
        if (address(registry_) == address(0) || address(token_) == address(0)) revert ZeroAddress();
        WalletStorage storage $ = _storage();
        $.registry = registry_;
        $.token = token_;
        $.deposit = deposit_;
    }

    /// @inheritdoc IHubWallet
    function deposit() external view returns (uint256) {
        return _storage().deposit;
    }

    /// @inheritdoc IHubWallet
    function earnings() public view returns (uint256) {
        WalletStorage storage $ = _storage();
        uint256 balance = $.token.balanceOf(address(this));
        return balance > $.deposit ? balance - $.deposit : 0;
    }

    /// @inheritdoc IHubWallet
    function registry() external view returns (IHubRegistry) {
        return _storage().registry;
    }

    /// @inheritdoc IHubWallet
    function withdrawEarnings(address to, uint256 amount) external {
        WalletStorage storage $ = _storage();
        if (msg.sender != $.registry.operatorOf(address(this))) revert NotOperator(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        uint256 available = earnings();
        if (amount > available) revert InsufficientEarnings(amount, available);
        emit EarningsWithdrawn(to, amount);
        $.token.safeTransfer(to, amount);
    }

    /// @inheritdoc IHubWallet
    function releaseDeposit(address to) external returns (uint256 amount) {
        amount = _takeDeposit();
        emit DepositReleased(to, amount);
        _storage().token.safeTransfer(to, amount);
    }

    /// @inheritdoc IHubWallet
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
