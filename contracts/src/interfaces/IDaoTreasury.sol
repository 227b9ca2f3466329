// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IDaoTreasury
/// @notice The entry point through which the registry hands an expropriated deposit to the treasury.
interface IDaoTreasury {
    /// @notice Records `amount` tokens, already transferred in, as a frozen lot taken from `hub`.
    /// @param hub The blacklisted hub.
    /// @param amount The expropriated deposit.
    /// @return lotId The new lot's index.
    function recordExpropriation(address hub, uint256 amount) external returns (uint256 lotId);
}
