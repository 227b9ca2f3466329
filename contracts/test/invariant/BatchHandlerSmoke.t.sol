// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PRBTest} from "@prb/test/PRBTest.sol";
import {BatchHandler} from "./BatchHandler.sol";

/// @dev The invariant handler's actions do what they say (so the invariants are not vacuous).
contract BatchHandlerSmokeTest is PRBTest {
    function test_the_handler_commits_claims_and_voids() public {
        BatchHandler handler = new BatchHandler();
        handler.deposit(0, 500e18);
        // The fixture's bound() is modular: a count of 0 means one job.
        handler.epoch(7, 0, false);
        assertEq(handler.ghostEpochs(), 1, "an epoch");
        handler.epoch(8, 0, true);
        handler.claim(0);
        assertEq(handler.ghostClaimsVoided(), 1, "the committed job's claim is void");
        handler.claim(1);
        assertEq(handler.ghostClaimsPaid(), 1, "the withheld job's claim is paid");
        assertFalse(handler.ghostPaidTwice());
    }
}
