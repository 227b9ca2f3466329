// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IFogErrors} from "../src/interfaces/IFogErrors.sol";
import {IHubWallet} from "../src/interfaces/IHubWallet.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {BeaconProxy} from "@openzeppelin/contracts/proxy/beacon/BeaconProxy.sol";
import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {HubRegistry} from "../src/HubRegistry.sol";
import {HubWallet} from "../src/HubWallet.sol";
import {IHubRegistry} from "../src/interfaces/IHubRegistry.sol";
import {FogFixture} from "./utils/FogFixture.sol";

contract HubRegistryTest is FogFixture {
    // ------------------------------------------------------------ initialise

    function test_initializeChecksTheUnbondingOutlastsAVote() public {
        IHubRegistry.Config memory c = registryConfig();
        // Issue 14, point 7: a whole vote plus a margin, not a second more than the vote.
        uint256 required = uint256(VOTING_DELAY) + VOTING_PERIOD + TIMELOCK_DELAY + 1 hours;
        c.unbondingPeriod = uint64(required);
        address impl = address(new HubRegistry());
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.UnbondingTooShort.selector, uint64(required), required)
        );
        new ERC1967Proxy(impl, abi.encodeCall(HubRegistry.initialize, (c)));
        c.unbondingPeriod = uint64(required + 1);
        new ERC1967Proxy(impl, abi.encodeCall(HubRegistry.initialize, (c)));
    }

    function test_initializeRejectsBadConfig() public {
        address impl = address(new HubRegistry());
        IHubRegistry.Config memory c = registryConfig();
        c.treasury = address(0);
        vm.expectRevert(IFogErrors.ZeroAddress.selector);
        new ERC1967Proxy(impl, abi.encodeCall(HubRegistry.initialize, (c)));
        c = registryConfig();
        c.maxFeeBps = 10_001;
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.InvalidMaxFee.selector, uint16(10_001)));
        new ERC1967Proxy(impl, abi.encodeCall(HubRegistry.initialize, (c)));
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        registry.initialize(registryConfig());
    }

    // -------------------------------------------------------------- register

    function test_registerCreatesWalletAndLocksDeposit() public {
        address op = address(0x0B2);
        fund(op, 20_000e18);
        vm.startPrank(op);
        token.approve(address(registry), 15_000e18);
        vm.recordLogs();
        address h = registry.register(address(0x5162), 1000, "https://two.example", 15_000e18);
        vm.stopPrank();

        assertEq(token.balanceOf(h), 15_000e18);
        assertEq(HubWallet(h).deposit(), 15_000e18);
        assertEq(HubWallet(h).earnings(), 0);
        assertEq(address(HubWallet(h).registry()), address(registry));
        IHubRegistry.Hub memory info = registry.hubInfo(h);
        assertEq(info.operator, op);
        assertEq(info.signer, address(0x5162));
        assertEq(uint256(info.feeBps), 1000);
        assertEq(info.endpoint, "https://two.example");
        assertTrue(info.state == IHubRegistry.HubState.Active);
        assertEq(registry.operatorOf(h), op);
        assertEq(registry.hubCount(), 2);
        (IHubRegistry.HubState state, address signer, uint16 fee) = registry.hubTerms(h);
        assertTrue(state == IHubRegistry.HubState.Active);
        assertEq(signer, address(0x5162));
        assertEq(uint256(fee), 1000);
    }

    function test_registerEmitsEvent() public {
        vm.startPrank(operator);
        token.approve(address(registry), MIN_DEPOSIT);
        vm.expectEmit(false, true, false, true, address(registry));
        emit IHubRegistry.HubRegistered(address(0), operator, hubSigner, 100, MIN_DEPOSIT, "https://x");
        registry.register(hubSigner, 100, "https://x", MIN_DEPOSIT);
        vm.stopPrank();
    }

    function test_registerRejectsBadInput() public {
        vm.startPrank(operator);
        token.approve(address(registry), type(uint256).max);
        vm.expectRevert(IFogErrors.ZeroAddress.selector);
        registry.register(address(0), 100, "https://x", MIN_DEPOSIT);
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.FeeTooHigh.selector, uint16(2001), MAX_FEE_BPS));
        registry.register(hubSigner, 2001, "https://x", MIN_DEPOSIT);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.DepositTooSmall.selector, MIN_DEPOSIT - 1, MIN_DEPOSIT)
        );
        registry.register(hubSigner, 100, "https://x", MIN_DEPOSIT - 1);
        vm.expectRevert(IHubRegistry.InvalidEndpoint.selector);
        registry.register(hubSigner, 100, "", MIN_DEPOSIT);
        vm.expectRevert(IHubRegistry.InvalidEndpoint.selector);
        registry.register(hubSigner, 100, string(new bytes(257)), MIN_DEPOSIT);
        vm.stopPrank();

        address poor = address(0x9002);
        vm.startPrank(poor);
        token.approve(address(registry), MIN_DEPOSIT);
        vm.expectRevert();
        registry.register(hubSigner, 100, "https://x", MIN_DEPOSIT);
        vm.stopPrank();
    }

    // -------------------------------------------------------------- operator

    function test_operatorUpdatesSignerAndEndpoint() public {
        vm.startPrank(operator);
        vm.expectEmit(address(registry));
        emit IHubRegistry.SignerChanged(hub, address(0x5163), 1);
        registry.setSigner(hub, address(0x5163));
        vm.expectEmit(address(registry));
        emit IHubRegistry.EndpointChanged(hub, "https://new.example");
        registry.setEndpoint(hub, "https://new.example");
        vm.expectRevert(IFogErrors.ZeroAddress.selector);
        registry.setSigner(hub, address(0));
        vm.expectRevert(IHubRegistry.InvalidEndpoint.selector);
        registry.setEndpoint(hub, "");
        vm.stopPrank();
        assertEq(registry.hubInfo(hub).signer, address(0x5163));
        assertEq(registry.hubInfo(hub).endpoint, "https://new.example");
    }

    function test_onlyTheOperatorManagesAHub() public {
        vm.startPrank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.NotOperator.selector, buyer));
        registry.setSigner(hub, buyer);
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.NotOperator.selector, buyer));
        registry.setEndpoint(hub, "https://evil");
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.NotOperator.selector, buyer));
        registry.announceExit(hub);
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.UnknownHub.selector, address(0x404)));
        registry.announceExit(address(0x404));
        vm.stopPrank();
    }

    function test_exitUnbondsThenReturnsDeposit() public {
        uint256 before = token.balanceOf(operator);
        vm.startPrank(operator);
        uint64 exitAt = uint64(block.timestamp + UNBONDING);
        vm.expectEmit(address(registry));
        emit IHubRegistry.ExitAnnounced(hub, exitAt);
        registry.announceExit(hub);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, hub, IHubRegistry.HubState.Exiting)
        );
        registry.announceExit(hub);
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.StillUnbonding.selector, hub, exitAt));
        registry.completeExit(hub);
        vm.warp(exitAt);
        vm.expectEmit(address(registry));
        emit IHubRegistry.ExitCompleted(hub, MIN_DEPOSIT);
        registry.completeExit(hub);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, hub, IHubRegistry.HubState.Exited)
        );
        registry.completeExit(hub);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, hub, IHubRegistry.HubState.Exited)
        );
        registry.setSigner(hub, address(1));
        vm.stopPrank();
        assertEq(token.balanceOf(operator), before + MIN_DEPOSIT);
        assertEq(HubWallet(hub).deposit(), 0);
    }

    function test_completeExitBeforeAnnounceFails() public {
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, hub, IHubRegistry.HubState.Active)
        );
        vm.prank(operator);
        registry.completeExit(hub);
    }

    function test_exitWaitFollowsLiveGovernanceSettings() public {
        // The DAO lengthens its voting period beyond the configured unbonding: exits wait longer too.
        passProposal(
            address(governor),
            abi.encodeWithSignature("setVotingPeriod(uint32)", uint32(30 days)),
            "longer votes"
        );
        vm.prank(operator);
        registry.announceExit(hub);
        uint256 vote = uint256(VOTING_DELAY) + 30 days + TIMELOCK_DELAY;
        assertEq(uint256(registry.hubInfo(hub).exitAt), block.timestamp + vote + registry.UNBONDING_MARGIN());
        assertEq(registry.voteDuration(), vote);
    }

    // ---------------------------------------------------------------- wallet

    function test_earningsWithdrawableDepositFrozen() public {
        fund(hub, 7e18); // commission arriving from settled jobs
        assertEq(HubWallet(hub).earnings(), 7e18);
        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(IHubWallet.InsufficientEarnings.selector, 8e18, 7e18));
        HubWallet(hub).withdrawEarnings(operator, 8e18);
        vm.expectEmit(hub);
        emit IHubWallet.EarningsWithdrawn(operator, 7e18);
        HubWallet(hub).withdrawEarnings(operator, 7e18);
        // attack: the frozen deposit cannot be withdrawn as earnings
        vm.expectRevert(abi.encodeWithSelector(IHubWallet.InsufficientEarnings.selector, 1, 0));
        HubWallet(hub).withdrawEarnings(operator, 1);
        vm.expectRevert(IFogErrors.ZeroAddress.selector);
        HubWallet(hub).withdrawEarnings(address(0), 0);
        vm.stopPrank();
        assertEq(token.balanceOf(hub), MIN_DEPOSIT);
    }

    function test_walletInitializeRejectsZeroAddresses() public {
        bytes memory init = abi.encodeCall(HubWallet.initialize, (HubRegistry(address(0)), token, 1));
        vm.expectRevert(IFogErrors.ZeroAddress.selector);
        new BeaconProxy(address(walletBeacon), init);
        HubWallet impl = new HubWallet();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        impl.initialize(registry, token, 1);
    }

    function test_attack_walletMovesOnlyOnRegistryWord() public {
        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(IHubWallet.NotRegistry.selector, operator));
        HubWallet(hub).releaseDeposit(operator);
        vm.expectRevert(abi.encodeWithSelector(IHubWallet.NotRegistry.selector, operator));
        HubWallet(hub).expropriate(operator);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IHubWallet.NotOperator.selector, buyer));
        vm.prank(buyer);
        HubWallet(hub).withdrawEarnings(buyer, 0);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        HubWallet(hub).initialize(registry, token, 0);
    }

    // ------------------------------------------------------------- blacklist

    function test_attack_blacklistWithoutAPassedVote() public {
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.NotTimelock.selector, voter));
        vm.prank(voter);
        registry.blacklist(hub, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.NotTimelock.selector, address(governor)));
        vm.prank(address(governor));
        registry.blacklist(hub, bytes32(0));
    }

    function test_blacklistRejectsUnknownAndFinishedHubs() public {
        vm.startPrank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.UnknownHub.selector, address(0x404)));
        registry.blacklist(address(0x404), bytes32(0));
        registry.blacklist(hub, bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, hub, IHubRegistry.HubState.Blacklisted)
        );
        registry.blacklist(hub, bytes32(0));
        vm.stopPrank();
    }

    function test_attack_upgradeByAnyoneButTimelock() public {
        address impl = address(new HubRegistry());
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.NotFundsTimelock.selector, operator));
        vm.prank(operator);
        registry.upgradeToAndCall(impl, "");
        // Not even the DAO's ordinary timelock: the registry moves deposits.
        vm.expectRevert(abi.encodeWithSelector(IHubRegistry.NotFundsTimelock.selector, address(timelock)));
        vm.prank(address(timelock));
        registry.upgradeToAndCall(impl, "");
        address walletImpl = address(new HubWallet());
        vm.expectRevert();
        vm.prank(operator);
        walletBeacon.upgradeTo(walletImpl);
    }

    function test_configView() public {
        IHubRegistry.Config memory c = registry.config();
        assertEq(address(c.token), address(token));
        assertEq(c.treasury, address(treasury));
        assertEq(uint256(c.unbondingPeriod), UNBONDING);
    }
}
