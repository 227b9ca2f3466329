// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IBatchSettlement} from "../../src/interfaces/IBatchSettlement.sol";
import {BatchFixture} from "../utils/BatchFixture.sol";

/// @dev Drives the batched path with random but well-formed actions — deposits, honest epochs,
///      withheld jobs claimed by their miners, claims on committed jobs (which must be voided),
///      withdrawals, time — and keeps ghost books of what was paid.
contract BatchHandler is BatchFixture {
    uint256 internal constant BUYERS = 3;
    uint256 internal constant MINERS = 5;

    /// @dev Enough to rebuild a job exactly.
    struct Seed {
        uint256 buyerKey;
        bytes32 salt;
        uint256 firstMiner;
        uint256 charge;
        uint256 madeAt;
        bool committed;
        uint32 epoch;
    }

    Seed[] internal seeds;
    mapping(uint32 epoch => uint256[]) internal epochJobs;
    mapping(uint32 epoch => IBatchSettlement.EpochRef) internal epochRefs;
    mapping(bytes32 jobId => uint256) public ghostPayments;
    bool public ghostPaidTwice;
    uint256 public ghostEpochs;
    uint256 public ghostClaimsPaid;
    uint256 public ghostClaimsVoided;
    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    address[] public accounts;
    uint256 internal nonce;

    constructor() {
        setUp();
        ghostDeposited = BOND + 10_000e18;
        for (uint256 i; i < BUYERS; ++i) {
            accounts.push(vm.addr(buyerKey(i)));
            fundAccount(buyerKey(i), 1000e18);
            ghostDeposited += 1000e18;
        }
        for (uint256 i; i < MINERS; ++i) {
            accounts.push(vm.addr(minerKey(i)));
        }
        accounts.push(hub);
        accounts.push(buyer);
    }

    function buyerKey(uint256 i) public pure returns (uint256) {
        return 0xB100 + i;
    }

    function accountCount() external view returns (uint256) {
        return accounts.length;
    }

    function balanceOfAccount(address account) external view returns (uint256) {
        return balanceOf(account) + earnedOf(account);
    }

    function tokenHeld() external view returns (uint256) {
        return token.balanceOf(address(batch));
    }

    function deposit(uint256 who, uint256 amount) external {
        amount = bound(amount, 1e18, 1000e18);
        fundAccount(buyerKey(who % BUYERS), amount);
        ghostDeposited += amount;
    }

    /// @dev Authorises 1-3 jobs; commits them honestly, or withholds them (the hub vanished).
    function epoch(uint256 seed, uint8 count, bool withhold) external {
        uint256 n = bound(count, 1, 3);
        uint256[] memory ids = new uint256[](n);
        IBatchSettlement.BatchJob[] memory jobs = new IBatchSettlement.BatchJob[](n);
        for (uint256 i; i < n; ++i) {
            uint256 key = buyerKey(uint256(keccak256(abi.encode(seed, i))) % BUYERS);
            uint256 charge = bound(uint256(keccak256(abi.encode(seed, i, "c"))), 1, 5e18);
            if (balanceOf(vm.addr(key)) < 2 * charge) return;
            seeds.push(Seed(key, bytes32(++nonce), seed % MINERS, charge, block.timestamp, false, 0));
            ids[i] = seeds.length - 1;
            jobs[i] = rebuild(seeds[ids[i]]);
        }
        if (withhold) return;
        IBatchSettlement.HubBook memory book = batch.hubBook(hub);
        if (book.epochs != 0) {
            uint256 open = uint256(book.lastCommitAt) + CHALLENGE_WINDOW + RESPONSE_WINDOW;
            if (block.timestamp < open) vm.warp(open);
            // The jobs must still be before their deadline.
            if (block.timestamp >= jobs[0].auth.deadline) return;
        }
        uint256 debits;
        for (uint256 i; i < n; ++i) {
            debits += totalOf(jobs[i]);
        }
        if (balanceOf(hub) < debits * 2) return;
        // Two jobs of one buyer could exceed its balance together.
        try this.commitAsHub(jobs) returns (IBatchSettlement.EpochRef memory ref) {
            ++ghostEpochs;
            epochRefs[ref.index] = ref;
            for (uint256 i; i < n; ++i) {
                seeds[ids[i]].committed = true;
                seeds[ids[i]].epoch = ref.index;
                epochJobs[ref.index].push(ids[i]);
                note(batchJobId(jobs[i].buyer, jobs[i].auth.salt));
            }
        } catch {}
    }

    function commitAsHub(IBatchSettlement.BatchJob[] memory jobs)
        external
        returns (IBatchSettlement.EpochRef memory ref)
    {
        require(msg.sender == address(this), "handler only");
        (ref,) = commit(jobs);
    }

    /// @dev A miner claims a job after its deadline; a committed one is then shown committed.
    function claim(uint256 which) external {
        if (seeds.length == 0) return;
        Seed memory s = seeds[which % seeds.length];
        IBatchSettlement.BatchJob memory job = rebuild(s);
        if (block.timestamp <= job.auth.deadline) vm.warp(uint256(job.auth.deadline) + 1);
        if (block.timestamp > uint256(job.auth.deadline) + CLAIM_PERIOD) return;
        bytes32 jobId = batchJobId(job.buyer, job.auth.salt);
        if (batch.claimOf(jobId).status != IBatchSettlement.ClaimStatus.None) return;
        batch.forceClaim(abi.encode(job));
        (address[] memory miners, uint256[] memory amounts) = payout(job);
        if (s.committed) {
            IBatchSettlement.InclusionProof memory p;
            p.epoch = epochRefs[s.epoch];
            p.leaf = leafOf(job);
            p.proof = proofIn(s);
            p.miners = miners;
            p.amounts = amounts;
            p.answered = new bytes32[][](miners.length);
            batch.contestClaim(jobId, p);
            ++ghostClaimsVoided;
        }
        vm.warp(block.timestamp + PROOF_WINDOW);
        try batch.payClaim(jobId, miners, amounts) {
            ++ghostClaimsPaid;
            note(jobId);
        } catch {}
    }

    function withdraw(uint256 who, uint256 amount) external {
        address account = vm.addr(buyerKey(who % BUYERS));
        amount = bound(amount, 1, 1000e18);
        vm.prank(account);
        batch.requestWithdrawal(account, amount);
        vm.warp(block.timestamp + WITHDRAWAL_DELAY);
        uint256 before = token.balanceOf(account);
        vm.prank(account);
        batch.withdraw(account);
        ghostWithdrawn += token.balanceOf(account) - before;
    }

    function claimState(uint256 which) external view returns (uint8 status, uint40 payableAt, uint256 time) {
        Seed memory s = seeds[which % seeds.length];
        IBatchSettlement.Claim memory c = batch.claimOf(batchJobId(vm.addr(s.buyerKey), s.salt));
        return (uint8(c.status), c.payableAt, block.timestamp);
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 2 days));
    }

    function note(bytes32 jobId) internal {
        if (++ghostPayments[jobId] > 1) ghostPaidTwice = true;
    }

    function rebuild(Seed memory s) internal view returns (IBatchSettlement.BatchJob memory) {
        return makeJobAt(s.buyerKey, s.salt, s.firstMiner, one(s.charge), 2 * s.charge, s.madeAt);
    }

    function proofIn(Seed memory s) internal view returns (bytes32[] memory) {
        uint256[] storage ids = epochJobs[s.epoch];
        bytes32[] memory leaves = new bytes32[](ids.length);
        uint256 index;
        for (uint256 i; i < ids.length; ++i) {
            leaves[i] = leafHashOf(leafOf(rebuild(seeds[ids[i]])));
            if (seeds[ids[i]].salt == s.salt) index = i;
        }
        return proofOf(leaves, index);
    }

    function payout(IBatchSettlement.BatchJob memory job)
        internal
        pure
        returns (address[] memory miners, uint256[] memory amounts)
    {
        miners = new address[](job.receipts.length);
        amounts = new uint256[](job.receipts.length);
        for (uint256 i; i < job.receipts.length; ++i) {
            miners[i] = job.receipts[i].receipt.miner;
            amounts[i] = job.receipts[i].receipt.amountCharged;
        }
    }
}
