// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @dev Foundry's section gas snapshots (PRBTest's Vm interface predates them).
interface GasSnapshots {
    function startSnapshotGas(string calldata name) external;
    function stopSnapshotGas() external returns (uint256);
}
