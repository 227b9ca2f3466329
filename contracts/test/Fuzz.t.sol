// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IHubRegistry} from "../src/interfaces/IHubRegistry.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {FogGovernor} from "../src/FogGovernor.sol";
import {HubRegistry} from "../src/HubRegistry.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {FogFixture} from "./utils/FogFixture.sol";

/// @dev Property tests over amounts, fees, replica counts and deadlines (1,000 runs each by default).
contract FuzzTest is FogFixture {
    function _hubWithFee(uint16 feeBps) internal returns (address) {
        address op = address(uint160(0xF00000 + feeBps));
        fund(op, MIN_DEPOSIT);
        return registerHub(op, hubSigner, feeBps, MIN_DEPOSIT);
    }

    function testFuzz_settlementPaysExactlyAndNeverMoreThanLocked(
        uint96 lockedSeed,
        uint256 chargeSeed,
        uint16 feeSeed,
        uint8 kSeed
    ) public {
        uint16 feeBps = uint16(bound(feeSeed, 0, MAX_FEE_BPS));
        uint8 k = uint8(bound(kSeed, 1, 5));
        uint256 locked = bound(lockedSeed, 1, MIN_DEPOSIT); // within the hub's exposure cap
        hub = _hubWithFee(feeBps);
        bytes32 jobId = openJob(bytes32(chargeSeed), k, locked);

        // Each miner charges at most its share of what the lock covers after commission.
        uint256 cap = locked * 10_000 / (10_000 + feeBps) / k;
        IJobEscrow.SignedReceipt[] memory list = new IJobEscrow.SignedReceipt[](k);
        uint256 total;
        for (uint256 i; i < k; ++i) {
            uint256 charge = bound(uint256(keccak256(abi.encode(chargeSeed, i))), 0, cap);
            list[i] = signed(receiptFor(jobId, i, charge, keccak256("out")), i, charge);
            total += charge;
        }
        uint256 commission = total * feeBps / 10_000;
        uint256 buyerBefore = token.balanceOf(buyer);
        escrow.settle(jobId, list);

        assertLte(total + commission, locked);
        for (uint256 i; i < k; ++i) {
            assertEq(token.balanceOf(list[i].receipt.miner), list[i].receipt.amountCharged);
        }
        assertEq(token.balanceOf(hub), MIN_DEPOSIT + commission);
        assertEq(token.balanceOf(buyer), buyerBefore + locked - total - commission);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    function testFuzz_overchargeAlwaysReverts(uint96 lockedSeed, uint256 extra, uint16 feeSeed) public {
        uint16 feeBps = uint16(bound(feeSeed, 0, MAX_FEE_BPS));
        uint256 locked = bound(lockedSeed, 1, MIN_DEPOSIT);
        hub = _hubWithFee(feeBps);
        bytes32 jobId = openJob(bytes32(extra), 1, locked);
        uint256 charge = locked + 1 + bound(extra, 0, 1e30); // above the lock before any commission
        IJobEscrow.SignedReceipt[] memory list = new IJobEscrow.SignedReceipt[](1);
        list[0] = signed(receiptFor(jobId, 0, charge, keccak256("out")), 0, charge);
        uint256 payment = charge + charge * feeBps / 10_000;
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.PaymentExceedsLocked.selector, payment, locked));
        escrow.settle(jobId, list);
    }

    function testFuzz_openAcceptsOnlySaneDeadlines(uint64 deadline) public {
        vm.startPrank(buyer);
        token.approve(address(escrow), 1e18);
        bool sane = deadline > block.timestamp && deadline <= block.timestamp + 365 days;
        uint256 earliest = block.timestamp + MAX_DURATION + escrow.SETTLEMENT_WINDOW();
        if (!sane) {
            vm.expectRevert(abi.encodeWithSelector(IJobEscrow.InvalidDeadline.selector, deadline));
        } else if (deadline < earliest) {
            vm.expectRevert(abi.encodeWithSelector(IJobEscrow.DeadlineTooSoon.selector, deadline, earliest));
        }
        escrow.open(bytes32(uint256(deadline)), hub, bytes32(0), deadline, 1, 1e18, MAX_DURATION);
        vm.stopPrank();
    }

    function testFuzz_refundOnlyAfterDeadlineAndOnlyOnce(uint32 waitSeed, uint8 kSeed) public {
        uint8 k = uint8(bound(kSeed, 1, 16));
        bytes32 jobId = openJob(bytes32(uint256(waitSeed)), k, 7e18);
        uint256 wait = bound(waitSeed, 0, 3 days);
        vm.warp(block.timestamp + wait);
        uint256 before = token.balanceOf(buyer);
        vm.startPrank(buyer);
        if (wait <= 1 days) {
            vm.expectRevert();
            escrow.refund(jobId);
            assertEq(token.balanceOf(buyer), before);
        } else {
            escrow.refund(jobId);
            assertEq(token.balanceOf(buyer), before + 7e18);
            vm.expectRevert();
            escrow.refund(jobId);
        }
        vm.stopPrank();
    }

    function testFuzz_feeAboveCapRejected(uint16 feeBps) public {
        vm.startPrank(operator);
        token.approve(address(registry), MIN_DEPOSIT);
        if (feeBps > MAX_FEE_BPS) {
            vm.expectRevert(abi.encodeWithSelector(IHubRegistry.FeeTooHigh.selector, feeBps, MAX_FEE_BPS));
        }
        registry.register(hubSigner, feeBps, "https://f", MIN_DEPOSIT);
        vm.stopPrank();
    }

    function testFuzz_unbondingMustOutlastAnyVoteSettings(
        uint32 delaySeed,
        uint32 periodSeed,
        uint32 lockSeed,
        uint64 unbonding
    ) public {
        uint48 delay = uint48(bound(delaySeed, 0, 30 days));
        uint32 period = uint32(bound(periodSeed, 1, 60 days));
        uint256 lockDelay = bound(lockSeed, 0, 30 days);
        address[] memory none = new address[](0);
        TimelockController tl = new TimelockController(lockDelay, none, none, address(this));
        FogGovernor gov = new FogGovernor(token, tl, delay, period, PROPOSAL_THRESHOLD, 4);
        IHubRegistry.Config memory c = registryConfig();
        c.governor = IGovernor(address(gov));
        c.timelock = tl;
        c.unbondingPeriod = unbonding;
        uint256 required = uint256(delay) + period + lockDelay + 1 hours;
        address impl = address(new HubRegistry());
        if (unbonding <= required) {
            vm.expectRevert(
                abi.encodeWithSelector(IHubRegistry.UnbondingTooShort.selector, unbonding, required)
            );
        }
        new ERC1967Proxy(impl, abi.encodeCall(HubRegistry.initialize, (c)));
    }
}
