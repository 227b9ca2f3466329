// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PRBTest} from "@prb/test/PRBTest.sol";
import {BatchHandler} from "./BatchHandler.sol";

/// @dev Invariants of the batched path over random deposits, epochs, withheld jobs, claims,
///      withdrawals and time.
contract BatchInvariantTest is PRBTest {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    BatchHandler internal handler;

    function setUp() public {
        handler = new BatchHandler();
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory list) {
        bytes4[] memory selectors = new bytes4[](5);
        selectors[0] = BatchHandler.deposit.selector;
        selectors[1] = BatchHandler.epoch.selector;
        selectors[2] = BatchHandler.claim.selector;
        selectors[3] = BatchHandler.withdraw.selector;
        selectors[4] = BatchHandler.warp.selector;
        list = new FuzzSelector[](1);
        list[0] = FuzzSelector(address(handler), selectors);
    }

    /// @dev Every token the contract holds is in some account, and no account holds one it lacks.
    function invariant_accounts_hold_exactly_the_contracts_tokens() public {
        uint256 sum;
        for (uint256 i; i < handler.accountCount(); ++i) {
            sum += handler.balanceOfAccount(handler.accounts(i));
        }
        assertEq(sum, handler.tokenHeld());
    }

    /// @dev What left equals what came in minus what is still held: nothing created, nothing lost.
    function invariant_claims_and_withdrawals_never_exceed_funding() public {
        assertEq(handler.ghostDeposited() - handler.ghostWithdrawn(), handler.tokenHeld());
    }

    /// @dev A job is paid once, by an epoch or by its miners' claim, never both.
    function invariant_no_job_is_paid_twice() public {
        assertFalse(handler.ghostPaidTwice());
    }
}
