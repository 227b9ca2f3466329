// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title FogToken
/// @notice The ERC-20 in which Fog jobs are paid and Fog's DAO votes. Fixed supply, minted once at
///         deployment; no owner, no mint, no pause, not upgradeable.
/// @dev EIP-2612 permit lets a buyer open an escrow in one transaction. ERC20Votes uses a timestamp
///      clock (EIP-6372) so that governance periods and the hubs' unbonding period are both in seconds
///      and can be compared on chain.
contract FogToken is ERC20, ERC20Permit, ERC20Votes {
    /// @notice Mints the whole supply to `holder`.
    /// @param holder Receives `supply` base units (18 decimals).
    /// @param supply Total supply, fixed forever.
    constructor(address holder, uint256 supply) ERC20("Fog", "FOG") ERC20Permit("Fog") {
        _mint(holder, supply);
    }

    /// @notice The clock governance reads votes by: the block timestamp.
    /// @return The current timestamp as a uint48.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice Describes the clock (EIP-6372).
    /// @return The machine-readable clock description.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    /// @inheritdoc Nonces
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
