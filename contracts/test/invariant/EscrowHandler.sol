// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {DaoTreasury} from "../../src/DaoTreasury.sol";
import {FogToken} from "../../src/FogToken.sol";
import {HubRegistry} from "../../src/HubRegistry.sol";
import {HubWallet} from "../../src/HubWallet.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {IHubRegistry} from "../../src/interfaces/IHubRegistry.sol";
import {FogFixture} from "../utils/FogFixture.sol";

/// @dev Drives the escrow, registry and treasury with random but well-formed actions and keeps ghost
///      books of what should be true.
contract EscrowHandler is FogFixture {
    uint256 internal constant BUYERS = 3;
    uint256 internal constant MINERS = 5;

    address[] public hubs;
    bytes32[] public jobIds;
    mapping(bytes32 => uint256) public ghostLocked;
    mapping(bytes32 => uint256) public ghostPaidOut;
    mapping(bytes32 => uint256) public ghostSettleCount;
    mapping(bytes32 => uint256) public ghostRefundCount;
    mapping(address => uint256) public ghostExpropriated;
    uint256 public ghostOpenLocked;
    mapping(address => uint256) public ghostHubOpenLocked;
    mapping(address => uint256) public ghostHubOpenJobs;
    /// A hub completed its exit while it held open jobs, or before its unbonding since the last close.
    bool public ghostEarlyExit;
    mapping(address => uint256) public ghostReleased;
    /// The signing key of each hub's signer version.
    mapping(address => mapping(uint16 => uint256)) internal signerKeys;
    uint256 internal nonce;

    constructor(
        FogToken token_,
        JobEscrow escrow_,
        HubRegistry registry_,
        DaoTreasury treasury_,
        TimelockController timelock_,
        address[] memory hubs_
    ) {
        token = token_;
        escrow = escrow_;
        registry = registry_;
        treasury = treasury_;
        timelock = timelock_;
        hubs = hubs_;
        for (uint256 i; i < hubs_.length; ++i) {
            signerKeys[hubs_[i]][0] = HUB_SIGNER_KEY;
        }
    }

    function buyerKey(uint256 i) public pure returns (uint256) {
        return 0xB000 + i % BUYERS;
    }

    function minerAddress(uint256 i) public pure returns (address) {
        return vm.addr(minerKey(i));
    }

    function jobCount() external view returns (uint256) {
        return jobIds.length;
    }

    function hubCount() external view returns (uint256) {
        return hubs.length;
    }

    // ---------------------------------------------------------------- actions

    function open(uint256 buyerSeed, uint256 hubSeed, uint256 amountSeed, uint8 kSeed, uint32 deadlineSeed)
        external
    {
        address b = vm.addr(buyerKey(buyerSeed));
        hub = hubs[hubSeed % hubs.length];
        (IHubRegistry.HubState state,,) = registry.hubTerms(hub);
        if (state != IHubRegistry.HubState.Active) return;
        uint256 cap = registry.exposureCap(hub);
        uint256 room = cap - ghostHubOpenLocked[hub];
        uint16 k = uint16(bound(kSeed, 1, 3));
        uint64 deadline = uint64(block.timestamp + bound(deadlineSeed, MAX_DURATION + 31 minutes, 10 days));
        vm.startPrank(b);
        token.approve(address(escrow), type(uint256).max);
        if (room == 0 || amountSeed % 8 == 0) {
            // Past the cap: refused, naming it.
            uint256 over = room + 1 + amountSeed % 1e18;
            if (over > token.balanceOf(b)) {
                vm.stopPrank();
                return;
            }
            vm.expectRevert(
                abi.encodeWithSelector(
                    IHubRegistry.ExposureCapExceeded.selector, hub, ghostHubOpenLocked[hub] + over, cap
                )
            );
            escrow.open(bytes32(++nonce), hub, bytes32(0), deadline, k, over, MAX_DURATION);
            vm.stopPrank();
            return;
        }
        uint256 amount = bound(amountSeed, 1, room);
        if (amount > token.balanceOf(b)) {
            vm.stopPrank();
            return;
        }
        bytes32 jobId = escrow.open(
            bytes32(++nonce), hub, keccak256(abi.encode(nonce)), deadline, k, amount, MAX_DURATION
        );
        vm.stopPrank();
        jobIds.push(jobId);
        ghostLocked[jobId] = amount;
        ghostOpenLocked += amount;
        ghostHubOpenLocked[hub] += amount;
        ghostHubOpenJobs[hub] += 1;
    }

    function settle(uint256 jobSeed, uint256 chargeSeed) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[jobSeed % jobIds.length];
        IJobEscrow.Job memory job = escrow.getJob(jobId);
        if (job.status != IJobEscrow.JobStatus.Open || block.timestamp > job.deadline) return;
        (IHubRegistry.HubState state,,) = registry.hubTerms(job.hub);
        // A blacklisted hub's miners still settle; the hub's commission then goes to the buyer.
        bool hubEarns = state != IHubRegistry.HubState.Blacklisted;
        uint16 fee = job.feeBps;
        uint256 cap = uint256(job.maxPayment) * 10_000 / (10_000 + fee) / job.replicas;
        IJobEscrow.SignedReceipt[] memory list = new IJobEscrow.SignedReceipt[](job.replicas);
        uint256 total;
        uint256 first = chargeSeed % MINERS;
        uint256 hubKey = signerKeys[job.hub][job.signerVersion];
        bytes32 separator = domainSeparator(block.chainid, address(escrow));
        for (uint256 i; i < job.replicas; ++i) {
            uint256 m = (first + i) % MINERS;
            uint256 charge = bound(uint256(keccak256(abi.encode(chargeSeed, i))), 0, cap);
            list[i] = signedUnder(
                receiptFor(jobId, m, charge, keccak256("out")), minerKey(m), hubKey, charge, separator
            );
            total += charge;
        }
        escrow.settle(jobId, list);
        ghostSettleCount[jobId] += 1;
        ghostPaidOut[jobId] = total + (hubEarns ? total * fee / 10_000 : 0);
        _closed(job);
    }

    function refund(uint256 jobSeed) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[jobSeed % jobIds.length];
        IJobEscrow.Job memory job = escrow.getJob(jobId);
        if (job.status != IJobEscrow.JobStatus.Open) return;
        (IHubRegistry.HubState state,,) = registry.hubTerms(job.hub);
        // A blacklisted hub's buyers refund at once; the others wait for the deadline.
        if (state != IHubRegistry.HubState.Blacklisted && block.timestamp <= job.deadline) {
            vm.warp(uint256(job.deadline) + 1);
        }
        vm.prank(job.buyer);
        escrow.refund(jobId);
        ghostRefundCount[jobId] += 1;
        _closed(job);
    }

    /// @dev The hub gives a job up: the buyer gets everything back at once.
    function release(uint256 jobSeed) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[jobSeed % jobIds.length];
        IJobEscrow.Job memory job = escrow.getJob(jobId);
        if (job.status != IJobEscrow.JobStatus.Open) return;
        vm.prank(vm.addr(signerKeys[job.hub][job.signerVersion]));
        escrow.release(jobId);
        ghostRefundCount[jobId] += 1;
        _closed(job);
    }

    function _closed(IJobEscrow.Job memory job) internal {
        ghostOpenLocked -= job.maxPayment;
        ghostHubOpenLocked[job.hub] -= job.maxPayment;
        ghostHubOpenJobs[job.hub] -= 1;
    }

    /// @dev The operator rotates the assignment key; jobs already open keep theirs.
    function rotateSigner(uint256 hubSeed) external {
        address h = hubs[hubSeed % hubs.length];
        (IHubRegistry.HubState state,,) = registry.hubTerms(h);
        if (state != IHubRegistry.HubState.Active && state != IHubRegistry.HubState.Exiting) return;
        uint16 next = registry.hubInfo(h).signerVersion + 1;
        uint256 key = 0x5100 + uint256(uint160(h)) % 1000 * 100 + next;
        signerKeys[h][next] = key;
        vm.prank(registry.operatorOf(h));
        registry.setSigner(h, vm.addr(key));
    }

    function announceExit(uint256 hubSeed) external {
        if (hubSeed % 8 != 0) return;
        address h = hubs[(hubSeed / 8) % hubs.length];
        (IHubRegistry.HubState state,,) = registry.hubTerms(h);
        if (state != IHubRegistry.HubState.Active) return;
        vm.prank(registry.operatorOf(h));
        registry.announceExit(h);
    }

    /// @dev Tries to leave; records it if the registry let a hub go too early.
    function completeExit(uint256 hubSeed) external {
        address h = hubs[hubSeed % hubs.length];
        IHubRegistry.Hub memory info = registry.hubInfo(h);
        if (info.state != IHubRegistry.HubState.Exiting) return;
        uint256 openBefore = ghostHubOpenJobs[h];
        uint256 bondedUntil = uint256(info.lastClosedAt) + registry.effectiveUnbonding();
        uint256 deposit = HubWallet(h).deposit();
        vm.prank(info.operator);
        try registry.completeExit(h) {
            if (openBefore != 0 || block.timestamp < bondedUntil || block.timestamp < info.exitAt) {
                ghostEarlyExit = true;
            }
            ghostReleased[h] = deposit;
        } catch {}
    }

    function warp(uint32 secondsSeed) external {
        vm.warp(block.timestamp + bound(secondsSeed, 1, 8 days));
    }

    /// @dev Stands for a passed DAO vote: the timelock is the only authority that can blacklist.
    function blacklist(uint256 hubSeed) external {
        // Rare, as votes are: otherwise both hubs die early and most sequences test nothing.
        if (hubSeed % 16 != 0) return;
        address h = hubs[(hubSeed / 16) % hubs.length];
        (IHubRegistry.HubState state,,) = registry.hubTerms(h);
        if (state != IHubRegistry.HubState.Active && state != IHubRegistry.HubState.Exiting) return;
        uint256 deposit = HubWallet(h).deposit();
        vm.prank(address(timelock));
        registry.blacklist(h, bytes32(0));
        ghostExpropriated[h] = deposit;
    }

    /// @dev The operator withdraws whatever earnings the hub has.
    function withdrawEarnings(uint256 hubSeed) external {
        address h = hubs[hubSeed % hubs.length];
        uint256 amount = HubWallet(h).earnings();
        address op = registry.operatorOf(h);
        vm.prank(op);
        HubWallet(h).withdrawEarnings(op, amount);
    }
}
