// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {UpgradeableBeacon} from "@openzeppelin/contracts/proxy/beacon/UpgradeableBeacon.sol";
import {DaoTreasury} from "../src/DaoTreasury.sol";
import {FogGovernor} from "../src/FogGovernor.sol";
import {HubRegistry} from "../src/HubRegistry.sol";
import {HubWallet} from "../src/HubWallet.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IDaoTreasury} from "../src/interfaces/IDaoTreasury.sol";
import {IHubRegistry} from "../src/interfaces/IHubRegistry.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {FogFixture} from "./utils/FogFixture.sol";

/// @dev Issue 14: no hub, buyer or DAO majority profits from cheating. One test per numbered point
///      (points 2 and 6 are `test_point2_*` in JobEscrow.t.sol and `test_point6_*` in
///      Governance.t.sol); each shows the attack failing.
contract EconomicsTest is FogFixture {
    bytes32 internal constant EVIDENCE = keccak256("evidence");

    function _blacklist() internal {
        passProposal(address(registry), abi.encodeCall(HubRegistry.blacklist, (hub, EVIDENCE)), "blacklist");
    }

    /// Point 1: a hub that announced exit keeps its deposit frozen and blacklistable until every job
    /// it holds is closed and the unbonding period has passed since the last of them; it takes no
    /// new job meanwhile.
    function test_point1_exitingHubStaysBondedWhileItHoldsJobs() public {
        vm.startPrank(buyer);
        token.approve(address(escrow), 20e18);
        bytes32 late = escrow.open(
            keccak256("late"),
            hub,
            specHashOf(keccak256("late")),
            uint64(block.timestamp + 300 days),
            1,
            10e18,
            MAX_DURATION
        );
        vm.stopPrank();
        vm.prank(operator);
        registry.announceExit(hub);
        uint64 exitAt = registry.hubInfo(hub).exitAt;

        // Past the announced wait, the open job still holds the deposit.
        vm.warp(exitAt + 1);
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.JobsStillOpen.selector, hub, uint24(1)));
        vm.prank(operator);
        registry.completeExit(hub);
        // An exiting hub takes no new jobs.
        vm.startPrank(buyer);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, hub, IHubRegistry.HubState.Exiting)
        );
        escrow.open(
            keccak256("new"), hub, bytes32(0), uint64(block.timestamp + 2 days), 1, 1e18, MAX_DURATION
        );
        vm.stopPrank();

        // Months later the hub settles its last job with sybil miners ...
        vm.warp(block.timestamp + 200 days);
        escrow.settle(late, quorum(late, 1, 5e18));
        uint256 closedAt = block.timestamp;
        // ... and still cannot leave for a whole unbonding period after it.
        vm.warp(closedAt + UNBONDING - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.StillUnbonding.selector, hub, uint64(closedAt + UNBONDING))
        );
        vm.prank(operator);
        registry.completeExit(hub);
        // Which leaves the DAO the time to blacklist it on that settlement's receipts.
        _blacklist();
        assertEq(token.balanceOf(address(treasury)), MIN_DEPOSIT);
        assertEq(HubWallet(hub).deposit(), 0);
    }

    function test_point1_aHubWithNoJobsLeavesAfterUnbonding() public {
        bytes32 jobId = openJob(keccak256("j"), 1, 10e18);
        escrow.settle(jobId, quorum(jobId, 1, 1e18));
        vm.prank(operator);
        registry.announceExit(hub);
        vm.warp(registry.hubInfo(hub).exitAt);
        uint256 before = token.balanceOf(operator);
        vm.prank(operator);
        registry.completeExit(hub);
        assertEq(token.balanceOf(operator), before + MIN_DEPOSIT);
    }

    /// Point 3: a hub's open escrow is capped at a governance-set share of its deposit, so a
    /// blacklist always costs it at least what it could take; the DAO can lower the cap, and can
    /// compensate a cheated buyer from the seized deposit once its freeze ends.
    function test_point3_openEscrowIsCappedByTheDeposit() public {
        vm.startPrank(buyer);
        token.approve(address(escrow), type(uint256).max);
        escrow.open(
            keccak256("a"),
            hub,
            bytes32(0),
            uint64(block.timestamp + 2 days),
            1,
            MIN_DEPOSIT - 1e18,
            MAX_DURATION
        );
        vm.expectRevert(
            abi.encodeWithSelector(
                IHubRegistry.ExposureCapExceeded.selector, hub, MIN_DEPOSIT + 1e18, MIN_DEPOSIT
            )
        );
        escrow.open(keccak256("b"), hub, bytes32(0), uint64(block.timestamp + 2 days), 1, 2e18, MAX_DURATION);
        escrow.open(keccak256("c"), hub, bytes32(0), uint64(block.timestamp + 2 days), 1, 1e18, MAX_DURATION);
        vm.stopPrank();
        assertEq(registry.hubInfo(hub).openEscrow, MIN_DEPOSIT);
        assertEq(registry.exposureCap(hub), MIN_DEPOSIT);

        // The DAO halves the cap; nobody else can, and never above 100%.
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.NotTimelock.selector, operator));
        vm.prank(operator);
        registry.setExposureCap(20_000);
        vm.prank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.InvalidExposure.selector, uint16(10_001)));
        registry.setExposureCap(10_001);
        passProposal(address(registry), abi.encodeCall(HubRegistry.setExposureCap, (5000)), "halve the cap");
        assertEq(registry.exposureCap(hub), MIN_DEPOSIT / 2);
        assertEq(uint256(registry.config().maxExposureBps), 5000);

        // Blacklisted: the deposit it loses covers all it held; a victim is compensated after the freeze.
        _blacklist();
        address victim = address(0x71C);
        vm.warp(treasury.lot(0).releaseAt);
        passProposal(
            address(treasury), abi.encodeCall(DaoTreasury.spend, (0, victim, 500e18)), "compensate a buyer"
        );
        assertEq(token.balanceOf(victim), 500e18);
    }

    /// Point 4: no ordinary vote upgrades a fund-holding module; upgrades go through the funds
    /// timelock, whose delay outlasts the treasury's freeze; the treasury refuses any upgrade while
    /// seized funds are frozen; the proposal threshold is never zero.
    function test_point4_noVoteSkipsTheFreeze() public {
        _blacklist();
        address treasuryV2 = address(new DaoTreasury());
        address escrowV2 = address(new JobEscrow());
        address walletV2 = address(new HubWallet());
        // Through the ordinary timelock: refused by every fund-holding module.
        vm.startPrank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.NotFundsTimelock.selector, address(timelock)));
        treasury.upgradeToAndCall(treasuryV2, "");
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.NotFundsTimelock.selector, address(timelock)));
        escrow.upgradeToAndCall(escrowV2, "");
        vm.expectRevert();
        walletBeacon.upgradeTo(walletV2);
        vm.stopPrank();
        // Even the funds timelock cannot touch the treasury while the lot is frozen.
        uint64 frozenUntil = treasury.frozenUntil();
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.FundsFrozen.selector, frozenUntil));
        vm.prank(address(fundsTimelock));
        treasury.upgradeToAndCall(treasuryV2, "");
        // The funds timelock's delay is longer than the freeze.
        assertGt(fundsTimelock.getMinDelay(), FREEZE);
        address impl = address(new DaoTreasury());
        TimelockController quick =
            new TimelockController(FREEZE, new address[](0), new address[](0), address(0));
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.UpgradeDelayTooShort.selector, FREEZE, FREEZE));
        new ERC1967Proxy(
            impl, abi.encodeCall(DaoTreasury.initialize, (token, address(timelock), address(quick), FREEZE))
        );
        // After the freeze, a vote through the funds timelock may upgrade it.
        passFundsProposal(
            address(treasury), abi.encodeCall(treasury.upgradeToAndCall, (treasuryV2, "")), "upgrade treasury"
        );
        assertGte(block.timestamp, frozenUntil);
    }

    function test_point4_theProposalThresholdIsNeverZero() public {
        vm.expectRevert(FogGovernor.ZeroProposalThreshold.selector);
        new FogGovernor(token, timelock, VOTING_DELAY, VOTING_PERIOD, 0, QUORUM_PERCENT);
        assertEq(governor.proposalThreshold(), PROPOSAL_THRESHOLD);
        // A vote to set it to zero passes, and its execution fails.
        bytes memory zero = abi.encodeWithSignature("setProposalThreshold(uint256)", uint256(0));
        queueProposal(address(governor), zero, "no threshold");
        vm.expectRevert();
        executeProposal(address(governor), zero, "no threshold");
        assertEq(governor.proposalThreshold(), PROPOSAL_THRESHOLD);
    }

    /// Point 5: a deadline must leave room for the whole run and the settlement window, so a buyer
    /// cannot have a job run to its end and then refund it because the deadline came first.
    function test_point5_theDeadlineFitsTheRunAndTheSettlement() public {
        uint64 tooSoon = uint64(block.timestamp + MAX_DURATION);
        uint256 earliest = block.timestamp + MAX_DURATION + escrow.SETTLEMENT_WINDOW();
        vm.startPrank(buyer);
        token.approve(address(escrow), 10e18);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.DeadlineTooSoon.selector, tooSoon, earliest));
        escrow.open(keccak256("s"), hub, bytes32(0), tooSoon, 1, 10e18, MAX_DURATION);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.InvalidDuration.selector, uint64(31 days)));
        escrow.open(keccak256("s"), hub, bytes32(0), uint64(block.timestamp + 40 days), 1, 10e18, 31 days);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.InvalidDuration.selector, uint64(0)));
        escrow.open(keccak256("s"), hub, bytes32(0), uint64(block.timestamp + 1 days), 1, 10e18, 0);
        bytes32 jobId = escrow.open(keccak256("s"), hub, bytes32(0), uint64(earliest), 1, 10e18, MAX_DURATION);
        vm.stopPrank();
        // Settlement and refund never overlap: settle up to the deadline, refund only after it.
        vm.warp(earliest);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.DeadlineNotReached.selector, uint64(earliest)));
        vm.prank(buyer);
        escrow.refund(jobId);
        vm.warp(earliest + 1);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 1, 1e18);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.DeadlinePassed.selector, uint64(earliest)));
        escrow.settle(jobId, list);
    }

    /// Point 7: the unbonding period exceeds a whole vote by a margin, checked when it is set, and
    /// exits wait for the vote as governance has it at completion, after any change of settings.
    function test_point7_noSameSecondEscape() public {
        uint256 required = registry.voteDuration() + registry.UNBONDING_MARGIN();
        vm.startPrank(address(timelock));
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.UnbondingTooShort.selector, uint64(required), required)
        );
        registry.setUnbondingPeriod(uint64(required));
        registry.setUnbondingPeriod(uint64(required + 1));
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.NotTimelock.selector, operator));
        vm.prank(operator);
        registry.setUnbondingPeriod(uint64(required + 1));

        // The hub announces; then the DAO lengthens its votes: the exit waits for the longer vote.
        vm.prank(operator);
        registry.announceExit(hub);
        uint64 announcedExit = registry.hubInfo(hub).exitAt;
        passProposal(
            address(governor), abi.encodeWithSignature("setVotingPeriod(uint32)", uint32(60 days)), "longer"
        );
        vm.warp(announcedExit);
        uint256 lastClose = registry.hubInfo(hub).lastClosedAt;
        uint256 longer = registry.effectiveUnbonding();
        assertGt(longer, uint256(UNBONDING));
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.StillUnbonding.selector, hub, uint64(lastClose + longer))
        );
        vm.prank(operator);
        registry.completeExit(hub);
    }
}
