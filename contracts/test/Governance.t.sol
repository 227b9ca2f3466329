// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IFogErrors} from "../src/interfaces/IFogErrors.sol";
import {IDaoTreasury} from "../src/interfaces/IDaoTreasury.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {DaoTreasury} from "../src/DaoTreasury.sol";
import {HubRegistry} from "../src/HubRegistry.sol";
import {HubWallet} from "../src/HubWallet.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IHubRegistry} from "../src/interfaces/IHubRegistry.sol";
import {FogFixture} from "./utils/FogFixture.sol";

/// @dev Blacklisting and expropriation through real proposals, and the treasury's freeze.
contract GovernanceTest is FogFixture {
    bytes32 internal constant EVIDENCE = keccak256("evidence job");

    function blacklistCall() internal view returns (bytes memory) {
        return abi.encodeCall(HubRegistry.blacklist, (hub, EVIDENCE));
    }

    function test_passedVoteBlacklistsAndFreezesDeposit() public {
        string memory description = "Blacklist hub: wrong output in job 0x..";
        queueProposal(address(registry), blacklistCall(), description);
        vm.expectEmit(address(registry));
        emit IHubRegistry.HubBlacklisted(hub, EVIDENCE, MIN_DEPOSIT, 0);
        executeProposal(address(registry), blacklistCall(), description);

        (IHubRegistry.HubState state,,) = registry.hubTerms(hub);
        assertTrue(state == IHubRegistry.HubState.Blacklisted);
        assertEq(token.balanceOf(address(treasury)), MIN_DEPOSIT);
        assertEq(HubWallet(hub).deposit(), 0);
        IDaoTreasury.Lot memory lot = treasury.lot(0);
        assertEq(lot.hub, hub);
        assertEq(lot.amount, MIN_DEPOSIT);
        assertEq(uint256(lot.releaseAt), block.timestamp + FREEZE);
        assertEq(treasury.lockedTotal(), MIN_DEPOSIT);
    }

    function test_attack_exitDuringPendingVoteStillExpropriated() public {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) =
            single(address(registry), blacklistCall());
        vm.prank(voter);
        uint256 id = governor.propose(targets, values, calldatas, "blacklist");
        // The hub sees the proposal and tries to run.
        vm.prank(operator);
        registry.announceExit(hub);
        vm.warp(block.timestamp + VOTING_DELAY + 1);
        vm.prank(voter);
        governor.castVote(id, 1);
        vm.warp(block.timestamp + VOTING_PERIOD + 1);
        governor.queue(targets, values, calldatas, keccak256("blacklist"));
        vm.warp(block.timestamp + TIMELOCK_DELAY + 1);
        // Even at the latest the vote can end, the exit is still unbonding.
        vm.expectRevert();
        vm.prank(operator);
        registry.completeExit(hub);
        governor.execute(targets, values, calldatas, keccak256("blacklist"));
        assertEq(token.balanceOf(address(treasury)), MIN_DEPOSIT);
        vm.warp(block.timestamp + UNBONDING);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, hub, IHubRegistry.HubState.Blacklisted)
        );
        vm.prank(operator);
        registry.completeExit(hub);
    }

    function test_attack_defeatedProposalCannotExpropriate() public {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) =
            single(address(registry), blacklistCall());
        vm.prank(voter);
        uint256 id = governor.propose(targets, values, calldatas, "greedy");
        vm.warp(block.timestamp + VOTING_DELAY + 1);
        vm.prank(voter);
        governor.castVote(id, 0); // against
        vm.warp(block.timestamp + VOTING_PERIOD + 1);
        assertTrue(governor.state(id) == IGovernor.ProposalState.Defeated);
        vm.expectRevert();
        governor.queue(targets, values, calldatas, keccak256("greedy"));
        vm.expectRevert();
        governor.execute(targets, values, calldatas, keccak256("greedy"));
        assertEq(HubWallet(hub).deposit(), MIN_DEPOSIT);
    }

    function test_attack_noQuorumNoBlacklist() public {
        address small = address(0x5A11);
        fund(small, PROPOSAL_THRESHOLD); // enough to propose, far below the quorum
        vm.prank(small);
        token.delegate(small);
        vm.warp(block.timestamp + 1);
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) =
            single(address(registry), blacklistCall());
        vm.prank(small);
        uint256 id = governor.propose(targets, values, calldatas, "tiny");
        vm.warp(block.timestamp + VOTING_DELAY + 1);
        vm.prank(small);
        governor.castVote(id, 1);
        vm.warp(block.timestamp + VOTING_PERIOD + 1);
        assertTrue(governor.state(id) == IGovernor.ProposalState.Defeated);
    }

    function test_attack_blacklistedHubOpensNothing() public {
        passProposal(address(registry), blacklistCall(), "blacklist");
        vm.startPrank(buyer);
        token.approve(address(escrow), 10e18);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, hub, IHubRegistry.HubState.Blacklisted)
        );
        escrow.open(
            keccak256("after"), hub, bytes32(0), uint64(block.timestamp + 1 days), 1, 10e18, MAX_DURATION
        );
        vm.stopPrank();
    }

    /// Issue 14, point 6: a blacklisted hub's buyers refund at once, and its miners with valid receipts
    /// still settle (the hub's commission then goes back to the buyer).
    function test_point6_blacklistingStrandsNobody() public {
        uint64 farDeadline = uint64(block.timestamp + 30 days);
        vm.startPrank(buyer);
        token.approve(address(escrow), 20e18);
        bytes32 refunded = escrow.open(
            keccak256("refund"), hub, specHashOf(keccak256("refund")), farDeadline, 1, 10e18, MAX_DURATION
        );
        bytes32 settled = escrow.open(
            keccak256("settle"), hub, specHashOf(keccak256("settle")), farDeadline, 1, 10e18, MAX_DURATION
        );
        vm.stopPrank();
        IJobEscrow.SignedReceipt[] memory list = quorum(settled, 1, 1e18);
        passProposal(address(registry), blacklistCall(), "blacklist");
        assertTrue(block.timestamp < farDeadline, "the deadline is still ahead");

        uint256 before = token.balanceOf(buyer);
        vm.prank(buyer);
        escrow.refund(refunded);
        assertEq(token.balanceOf(buyer), before + 10e18, "refunded at once");

        uint256 hubBefore = token.balanceOf(hub);
        escrow.settle(settled, list);
        assertEq(token.balanceOf(vm.addr(minerKey(0))), 1e18, "the miner is paid");
        assertEq(token.balanceOf(hub), hubBefore, "a blacklisted hub earns no commission");
        assertEq(token.balanceOf(buyer), before + 10e18 + 9e18, "the buyer gets the rest back");
        assertEq(registry.hubInfo(hub).openJobs, 0);
    }

    function test_earningsStayWithTheOperatorAfterBlacklist() public {
        fund(hub, 3e18);
        passProposal(address(registry), blacklistCall(), "blacklist");
        vm.prank(operator);
        HubWallet(hub).withdrawEarnings(operator, 3e18);
        assertEq(token.balanceOf(hub), 0);
    }

    // ----------------------------------------------------------------- treasury

    function test_treasurySpendsOnlyAfterFreezeAndOnlyByVote() public {
        passProposal(address(registry), blacklistCall(), "blacklist");
        address grantee = address(0x6A7);
        bytes memory spend = abi.encodeCall(DaoTreasury.spend, (0, grantee, 1000e18));

        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.NotTimelock.selector, voter));
        vm.prank(voter);
        treasury.spend(0, grantee, 1);

        uint64 releaseAt = treasury.lot(0).releaseAt;
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.StillFrozen.selector, 0, releaseAt));
        vm.prank(address(timelock));
        treasury.spend(0, grantee, 1);

        vm.warp(releaseAt);
        passProposal(address(treasury), spend, "grant");
        assertEq(token.balanceOf(grantee), 1000e18);
        assertEq(treasury.lot(0).remaining, MIN_DEPOSIT - 1000e18);

        vm.startPrank(address(timelock));
        vm.expectRevert(
            abi.encodeWithSelector(
                IDaoTreasury.AmountExceedsLot.selector, 0, MIN_DEPOSIT, MIN_DEPOSIT - 1000e18
            )
        );
        treasury.spend(0, grantee, MIN_DEPOSIT);
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.UnknownLot.selector, 1));
        treasury.spend(1, grantee, 1);
        vm.expectRevert(IFogErrors.ZeroAddress.selector);
        treasury.spend(0, address(0), 1);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.UnknownLot.selector, 5));
        treasury.lot(5);
    }

    function test_attack_treasuryAcceptsRecordsOnlyFromRegistryWithFunds() public {
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.NotRegistry.selector, operator));
        vm.prank(operator);
        treasury.recordExpropriation(hub, 1);
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.FundsNotReceived.selector, 1, 0));
        vm.prank(address(registry));
        treasury.recordExpropriation(hub, 1);
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.NotBinder.selector, address(this)));
        treasury.bindRegistry(address(0xBAD));
    }

    function test_treasuryInitializeChecks() public {
        address impl = address(new DaoTreasury());
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.FreezeTooShort.selector, uint64(1 hours)));
        new ERC1967Proxy(
            impl,
            abi.encodeCall(
                DaoTreasury.initialize, (token, address(timelock), address(fundsTimelock), uint64(1 hours))
            )
        );
        vm.expectRevert(IFogErrors.ZeroAddress.selector);
        new ERC1967Proxy(
            impl,
            abi.encodeCall(
                DaoTreasury.initialize,
                (IERC20(address(0)), address(timelock), address(fundsTimelock), FREEZE)
            )
        );
        DaoTreasury fresh = DaoTreasury(
            address(
                new ERC1967Proxy(
                    impl,
                    abi.encodeCall(
                        DaoTreasury.initialize, (token, address(timelock), address(fundsTimelock), FREEZE)
                    )
                )
            )
        );
        vm.expectRevert(IFogErrors.ZeroAddress.selector);
        fresh.bindRegistry(address(0));
        vm.expectEmit(address(fresh));
        emit IDaoTreasury.RegistryBound(address(registry));
        fresh.bindRegistry(address(registry));
        (,,, address reg, uint64 freeze) = fresh.wiring();
        assertEq(reg, address(registry));
        assertEq(uint256(freeze), FREEZE);
        assertEq(fresh.lotCount(), 0);
    }

    function test_attack_treasuryUpgradeByAnyoneButTimelock() public {
        address impl = address(new DaoTreasury());
        vm.expectRevert(abi.encodeWithSelector(IDaoTreasury.NotFundsTimelock.selector, voter));
        vm.prank(voter);
        treasury.upgradeToAndCall(impl, "");
    }
}
