// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IFogErrors
/// @notice Errors every Fog contract shares.
interface IFogErrors {
    /// @notice A zero address was given where a real one is needed.
    error ZeroAddress();
}
