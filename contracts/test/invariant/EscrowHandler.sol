// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

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
        uint256 amount = bound(amountSeed, 1, token.balanceOf(b) / 4 + 1);
        if (amount > token.balanceOf(b)) return;
        uint8 k = uint8(bound(kSeed, 1, 3));
        uint64 deadline = uint64(block.timestamp + bound(deadlineSeed, 1 hours, 10 days));
        vm.startPrank(b);
        token.approve(address(escrow), amount);
        bytes32 jobId = escrow.open(bytes32(++nonce), hub, keccak256(abi.encode(nonce)), deadline, k, amount);
        vm.stopPrank();
        jobIds.push(jobId);
        ghostLocked[jobId] = amount;
        ghostOpenLocked += amount;
    }

    function settle(uint256 jobSeed, uint256 chargeSeed) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[jobSeed % jobIds.length];
        JobEscrow.Job memory job = escrow.getJob(jobId);
        if (job.status != JobEscrow.JobStatus.Open || block.timestamp > job.deadline) return;
        (IHubRegistry.HubState state,,) = registry.hubTerms(job.hub);
        if (state == IHubRegistry.HubState.Blacklisted) return;
        (,, uint16 fee) = (state, address(0), job.feeBps);
        uint256 cap = uint256(job.maxPayment) * 10_000 / (10_000 + fee) / job.replicas;
        JobEscrow.SignedReceipt[] memory list = new JobEscrow.SignedReceipt[](job.replicas);
        uint256 total;
        uint256 first = chargeSeed % MINERS;
        for (uint256 i; i < job.replicas; ++i) {
            uint256 m = (first + i) % MINERS;
            uint256 charge = bound(uint256(keccak256(abi.encode(chargeSeed, i))), 0, cap);
            list[i] = signed(receiptFor(jobId, m, charge, keccak256("out")), m, charge);
            total += charge;
        }
        escrow.settle(jobId, list);
        ghostSettleCount[jobId] += 1;
        ghostPaidOut[jobId] = total + total * fee / 10_000;
        ghostOpenLocked -= job.maxPayment;
    }

    function refund(uint256 jobSeed) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[jobSeed % jobIds.length];
        JobEscrow.Job memory job = escrow.getJob(jobId);
        if (job.status != JobEscrow.JobStatus.Open) return;
        if (block.timestamp <= job.deadline) vm.warp(uint256(job.deadline) + 1);
        vm.prank(job.buyer);
        escrow.refund(jobId);
        ghostRefundCount[jobId] += 1;
        ghostOpenLocked -= job.maxPayment;
    }

    function warp(uint32 secondsSeed) external {
        vm.warp(block.timestamp + bound(secondsSeed, 1, 2 days));
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
