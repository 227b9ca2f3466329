// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IHubRegistry
/// @notice What the escrow and the hub wallets need to know about hubs.
interface IHubRegistry {
    /// @notice Life cycle of a hub. Only Active hubs take new jobs; Exiting hubs finish theirs.
    enum HubState {
        None,
        Active,
        Exiting,
        Blacklisted,
        Exited
    }

    /// @notice The terms under which `hub` takes and settles jobs.
    /// @param hub The hub's id (its HubWallet address).
    /// @return state The hub's state.
    /// @return signer The key that signs the hub's assignments.
    /// @return feeBps The hub's commission in basis points of what miners charge.
    function hubTerms(address hub) external view returns (HubState state, address signer, uint16 feeBps);

    /// @notice The operator of `hub`, who may withdraw its earnings.
    /// @param hub The hub's id.
    /// @return The operator's address, or zero for an unknown hub.
    function operatorOf(address hub) external view returns (address);
}
