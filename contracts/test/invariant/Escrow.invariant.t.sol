// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";
import {HubWallet} from "../../src/HubWallet.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {IHubRegistry} from "../../src/interfaces/IHubRegistry.sol";
import {FogFixture} from "../utils/FogFixture.sol";
import {EscrowHandler} from "./EscrowHandler.sol";

/// @dev Invariants over random sequences of open / settle / refund / warp / blacklist / withdraw.
///      256 runs x depth 64 in `make test`; FOUNDRY_PROFILE=deep for a longer run.
contract EscrowInvariantTest is FogFixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    EscrowHandler internal handler;
    address[] internal holders;

    function setUp() public override {
        super.setUp();
        address[] memory hubList = new address[](2);
        hubList[0] = hub;
        fund(address(0x0B9), MIN_DEPOSIT);
        hubList[1] = registerHub(address(0x0B9), hubSigner, 1500, MIN_DEPOSIT);
        handler = new EscrowHandler(token, escrow, registry, treasury, timelock, hubList);
        for (uint256 i; i < 3; ++i) {
            address b = vm.addr(handler.buyerKey(i));
            fund(b, 1_000_000e18);
            holders.push(b);
        }
        for (uint256 i; i < 5; ++i) {
            holders.push(handler.minerAddress(i));
        }
        holders.push(address(this));
        holders.push(buyer);
        holders.push(operator);
        holders.push(address(0x0B9));
        holders.push(voter);
        holders.push(hubList[0]);
        holders.push(hubList[1]);
        holders.push(address(escrow));
        holders.push(address(treasury));
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory list) {
        bytes4[] memory selectors = new bytes4[](10);
        selectors[0] = EscrowHandler.open.selector;
        selectors[1] = EscrowHandler.settle.selector;
        selectors[2] = EscrowHandler.refund.selector;
        selectors[3] = EscrowHandler.warp.selector;
        selectors[4] = EscrowHandler.blacklist.selector;
        selectors[5] = EscrowHandler.withdrawEarnings.selector;
        selectors[6] = EscrowHandler.rotateSigner.selector;
        selectors[7] = EscrowHandler.announceExit.selector;
        selectors[8] = EscrowHandler.completeExit.selector;
        selectors[9] = EscrowHandler.release.selector;
        list = new FuzzSelector[](1);
        list[0] = FuzzSelector(address(handler), selectors);
    }

    function invariant_tokensAreConserved() public {
        uint256 sum;
        for (uint256 i; i < holders.length; ++i) {
            sum += token.balanceOf(holders[i]);
        }
        assertEq(sum, SUPPLY);
        assertEq(token.totalSupply(), SUPPLY);
    }

    function invariant_escrowHoldsExactlyTheOpenJobs() public {
        assertEq(token.balanceOf(address(escrow)), handler.ghostOpenLocked());
    }

    function invariant_jobsPayAtMostWhatTheyLocked_settleOnce_neverBoth() public {
        uint256 n = handler.jobCount();
        for (uint256 i; i < n; ++i) {
            bytes32 jobId = handler.jobIds(i);
            assertLte(handler.ghostPaidOut(jobId), handler.ghostLocked(jobId));
            uint256 settled = handler.ghostSettleCount(jobId);
            uint256 refunded = handler.ghostRefundCount(jobId);
            assertLte(settled, 1);
            assertLte(refunded, 1);
            assertLte(settled + refunded, 1);
            IJobEscrow.JobStatus status = escrow.getJob(jobId).status;
            if (settled == 1) assertTrue(status == IJobEscrow.JobStatus.Settled);
            if (refunded == 1) assertTrue(status == IJobEscrow.JobStatus.Refunded);
        }
    }

    function invariant_blacklistedDepositsSitInTheTreasury() public {
        uint256 expected;
        for (uint256 i; i < handler.hubCount(); ++i) {
            address h = handler.hubs(i);
            (IHubRegistry.HubState state,,) = registry.hubTerms(h);
            if (state == IHubRegistry.HubState.Blacklisted) {
                expected += handler.ghostExpropriated(h);
                assertEq(HubWallet(h).deposit(), 0);
            } else if (state == IHubRegistry.HubState.Exited) {
                assertEq(HubWallet(h).deposit(), 0);
                assertEq(handler.ghostReleased(h), MIN_DEPOSIT);
            } else {
                assertEq(HubWallet(h).deposit(), MIN_DEPOSIT);
                assertGte(token.balanceOf(h), MIN_DEPOSIT);
            }
        }
        assertEq(token.balanceOf(address(treasury)), expected);
        assertEq(treasury.lockedTotal(), expected);
    }

    /// A hub's open escrow never passes its cap while it can take jobs, and the registry's book of
    /// open jobs matches what was opened and not yet closed.
    function invariant_openEscrowWithinTheCapAndBooked() public {
        for (uint256 i; i < handler.hubCount(); ++i) {
            address h = handler.hubs(i);
            IHubRegistry.Hub memory info = registry.hubInfo(h);
            assertEq(uint256(info.openEscrow), handler.ghostHubOpenLocked(h));
            assertEq(uint256(info.openJobs), handler.ghostHubOpenJobs(h));
            if (info.state == IHubRegistry.HubState.Active || info.state == IHubRegistry.HubState.Exiting) {
                assertLte(uint256(info.openEscrow), registry.exposureCap(h));
                assertLte(uint256(info.openEscrow), HubWallet(h).deposit());
            }
        }
    }

    /// A hub never takes its deposit back while it holds open jobs or before the unbonding period
    /// has passed since its last job closed.
    function invariant_noExitWithOpenJobsOrBeforeUnbonding() public {
        assertFalse(handler.ghostEarlyExit());
    }
}
