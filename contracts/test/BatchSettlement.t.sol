// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {BatchSettlement} from "../src/BatchSettlement.sol";
import {IBatchSettlement} from "../src/interfaces/IBatchSettlement.sol";
import {IBatchJobErrors, IReceiptErrors} from "../src/interfaces/IFogErrors.sol";
import {IHubRegistry} from "../src/interfaces/IHubRegistry.sol";
import {BatchFixture} from "./utils/BatchFixture.sol";

/// @dev The batched path's rules, one attack or property per test (docs/settlement.md).
contract BatchSettlementTest is BatchFixture {
    uint256 internal constant BUYER2_KEY = 0xB2;
    uint256 internal constant CHALLENGER_KEY = 0xC1;

    function setUp() public override {
        super.setUp();
        fundAccount(CHALLENGER_KEY, 1000e18);
    }

    function twoJobs() internal view returns (IBatchSettlement.BatchJob[] memory) {
        return jobsOf(
            makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18),
            makeJob(BUYER_KEY, bytes32("b"), 1, one(4e18), 20e18)
        );
    }

    // ------------------------------------------------------------ funding, withdrawal

    function test_a_buyer_funds_once_with_a_permit_and_pays_for_jobs_without_a_transaction_each() public {
        uint256 before = balanceOf(buyer);
        IBatchSettlement.BatchJob[] memory jobs = twoJobs();
        commit(jobs);
        uint256 paid = totalOf(jobs[0]) + totalOf(jobs[1]);
        assertEq(balanceOf(buyer), before - paid);
        assertEq(earnedOf(vm.addr(minerKey(0))), 10e18);
        assertEq(earnedOf(vm.addr(minerKey(1))), 4e18);
        assertEq(balanceOf(hub), BOND, "the bond is untouched");
        assertEq(earnedOf(hub), paid - 14e18, "the commission is earned");
    }

    function test_a_buyer_funds_its_account_without_a_transaction_through_the_hubs_commit() public {
        uint256 key = 0xB3;
        address carol = vm.addr(key);
        fund(carol, 50e18);
        IBatchSettlement.BatchJob[] memory jobs = jobsOf(makeJob(key, bytes32("c"), 0, one(10e18), 20e18));
        uint256[] memory entries = ledgerOf(jobs);
        IBatchSettlement.Funding[] memory fundings = new IBatchSettlement.Funding[](1);
        fundings[0] = fundingOf(key, 30e18);
        // Without the permit the same commit cannot debit her.
        vm.prank(hubSigner);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.InsufficientBalance.selector, carol, 0, totalOf(jobs[0]))
        );
        batch.commitEpoch(hub, bytes32(0), 1, noFunding(), entries);
        vm.prank(hubSigner);
        batch.commitEpoch(hub, bytes32(0), 1, fundings, entries);
        assertEq(balanceOf(carol), 30e18 - totalOf(jobs[0]));
        assertEq(token.balanceOf(carol), 20e18, "the deposit left her wallet, nothing else");
        assertEq(earnedOf(vm.addr(minerKey(0))), 10e18);
    }

    function test_a_carried_permit_without_the_tokens_fails_the_whole_commit() public {
        uint256 key = 0xB4;
        IBatchSettlement.Funding[] memory fundings = new IBatchSettlement.Funding[](1);
        fundings[0] = fundingOf(key, 30e18); // she holds nothing
        vm.prank(hubSigner);
        vm.expectRevert();
        batch.commitEpoch(hub, bytes32(0), 0, fundings, new uint256[](0));
        assertEq(balanceOf(vm.addr(key)), 0);
    }

    function test_withdrawal_waits_for_the_delay_and_pays_at_most_the_balance() public {
        vm.prank(buyer);
        batch.requestWithdrawal(buyer, 1_000_000e18);
        vm.prank(buyer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.WithdrawalNotReady.selector,
                buyer,
                uint40(block.timestamp + WITHDRAWAL_DELAY)
            )
        );
        batch.withdraw(buyer);
        // Jobs still settle during the delay.
        commit(twoJobs());
        uint256 left = balanceOf(buyer);
        vm.warp(block.timestamp + WITHDRAWAL_DELAY);
        uint256 wallet = token.balanceOf(buyer);
        vm.prank(buyer);
        batch.withdraw(buyer);
        assertEq(token.balanceOf(buyer), wallet + left);
        assertEq(balanceOf(buyer), 0);
    }

    function test_nobody_withdraws_another_account() public {
        vm.prank(vm.addr(CHALLENGER_KEY));
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.NotHubOperator.selector, vm.addr(CHALLENGER_KEY), address(0)
            )
        );
        batch.requestWithdrawal(buyer, 1);
        vm.prank(vm.addr(CHALLENGER_KEY));
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.NotHubOperator.selector, vm.addr(CHALLENGER_KEY), operator
            )
        );
        batch.requestWithdrawal(hub, 1);
    }

    function test_the_hub_bond_stays_while_its_epoch_can_be_challenged() public {
        vm.prank(operator);
        batch.requestWithdrawal(hub, BOND);
        vm.warp(block.timestamp + WITHDRAWAL_DELAY - 1 hours);
        (IBatchSettlement.EpochRef memory epoch,) = commit(twoJobs());
        vm.warp(block.timestamp + 1 hours);
        uint256 until = uint256(epoch.committedAt) + CHALLENGE_WINDOW + RESPONSE_WINDOW;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.BondLocked.selector, hub, until));
        batch.withdraw(hub);
        vm.warp(until);
        vm.prank(operator);
        batch.withdraw(hub);
        assertEq(token.balanceOf(operator) > 0, true);
    }

    function test_a_miner_spends_its_earnings_as_a_buyer_without_withdrawing() public {
        // Miner 0 earns in one epoch and pays for its own job in the next, from the same account.
        commit(jobsOf(makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18)));
        address miner = vm.addr(minerKey(0));
        assertEq(earnedOf(miner), 10e18);
        vm.warp(block.timestamp + CHALLENGE_WINDOW + RESPONSE_WINDOW);
        // One step, no withdrawal and no deposit.
        vm.prank(miner);
        batch.spendEarnings(miner, 9e18);
        IBatchSettlement.BatchJob memory own = makeJob(minerKey(0), bytes32("m"), 1, one(5e18), 9e18);
        commit(jobsOf(own));
        assertEq(balanceOf(miner), 9e18 - totalOf(own));
        assertEq(earnedOf(miner), 1e18);
        vm.prank(miner);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.InsufficientEarnings.selector, miner, 1e18, 2e18)
        );
        batch.spendEarnings(miner, 2e18);
    }

    function test_a_commit_can_pay_a_credit_straight_to_the_wallet() public {
        IBatchSettlement.BatchJob[] memory jobs = twoJobs();
        uint256[] memory entries = ledgerOf(jobs);
        address miner = vm.addr(minerKey(0));
        uint256 i = positionOf(entries, miner);
        entries[i] |= uint256(1) << 94;
        commitWith(jobs, entries);
        assertEq(token.balanceOf(miner), 10e18, "paid out in the commit");
        assertEq(earnedOf(miner), 0);
        // A debit cannot be paid out.
        vm.warp(block.timestamp + CHALLENGE_WINDOW + RESPONSE_WINDOW);
        uint256[] memory bad = new uint256[](2);
        (address lo, address hi) = hub < buyer ? (hub, buyer) : (buyer, hub);
        bad[0] = entry(lo, lo == buyer, 1) | (lo == buyer ? uint256(1) << 94 : 0);
        bad[1] = entry(hi, hi == buyer, 1) | (hi == buyer ? uint256(1) << 94 : 0);
        vm.prank(hubSigner);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.InvalidEntry.selector, lo == buyer ? 0 : 1));
        batch.commitEpoch(hub, bytes32(0), 1, noFunding(), bad);
    }

    function test_a_miner_withdraws_its_earnings_at_once_and_a_frozen_hub_cannot() public {
        commit(jobsOf(makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18)));
        address miner = vm.addr(minerKey(0));
        vm.prank(miner);
        batch.withdrawEarnings(miner, 10e18);
        assertEq(token.balanceOf(miner), 10e18);
        assertEq(earnedOf(miner), 0);
        uint256 fees = earnedOf(hub);
        vm.prank(operator);
        batch.withdrawEarnings(hub, fees);
        assertEq(earnedOf(hub), 0);
    }

    // ------------------------------------------------------------ commits

    function test_a_commit_must_balance_name_each_account_once_and_come_from_the_signer() public {
        uint256[] memory entries = new uint256[](2);
        entries[0] = entry(address(0x1000), false, 5);
        entries[1] = entry(buyer, true, 4);
        (address lo, address hi) =
            address(0x1000) < buyer ? (address(0x1000), buyer) : (buyer, address(0x1000));
        entries[0] = entry(lo, lo == buyer, lo == buyer ? 4 : 5);
        entries[1] = entry(hi, hi == buyer, hi == buyer ? 4 : 5);
        vm.prank(hubSigner);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.LedgerUnbalanced.selector, 5, 4));
        batch.commitEpoch(hub, bytes32(0), 1, noFunding(), entries);

        entries[0] = entry(buyer, true, 5);
        entries[1] = entry(buyer, false, 5);
        vm.prank(hubSigner);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.InvalidEntry.selector, 1));
        batch.commitEpoch(hub, bytes32(0), 1, noFunding(), entries);

        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.NotHubSigner.selector, buyer, hubSigner));
        batch.commitEpoch(hub, bytes32(0), 0, noFunding(), new uint256[](0));
    }

    function test_a_commit_cannot_debit_more_than_an_account_holds() public {
        uint256 held = balanceOf(buyer);
        uint256[] memory entries = new uint256[](2);
        (address lo, address hi) = hub < buyer ? (hub, buyer) : (buyer, hub);
        entries[0] = entry(lo, lo == buyer, held + 1);
        entries[1] = entry(hi, hi == buyer, held + 1);
        vm.prank(hubSigner);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.InsufficientBalance.selector, buyer, held, held + 1)
        );
        batch.commitEpoch(hub, bytes32(0), 1, noFunding(), entries);
    }

    function test_the_bond_must_cover_the_epoch_and_one_epoch_is_open_at_a_time() public {
        fundAccount(BUYER2_KEY, BOND * 2);
        IBatchSettlement.BatchJob memory big = makeJob(BUYER2_KEY, bytes32("big"), 0, one(BOND), BOND * 2);
        uint256[] memory entries = ledgerOf(jobsOf(big));
        vm.prank(hubSigner);
        uint256 debit = totalOf(big);
        uint256 bondAfter = BOND; // the commission is earned, not bond
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.BondTooSmall.selector, hub, bondAfter, debit * (10_000 + REWARD_BPS) / 10_000
            )
        );
        batch.commitEpoch(hub, bytes32(0), 1, noFunding(), entries);

        (IBatchSettlement.EpochRef memory epoch,) = commit(twoJobs());
        vm.prank(hubSigner);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.EpochStillOpen.selector,
                hub,
                uint256(epoch.committedAt) + CHALLENGE_WINDOW + RESPONSE_WINDOW
            )
        );
        batch.commitEpoch(hub, bytes32(0), 0, noFunding(), new uint256[](0));
    }

    // ------------------------------------------------------------ challenges (property 2)

    function test_an_honest_hub_answers_a_challenge_and_keeps_the_stake() public {
        IBatchSettlement.BatchJob[] memory jobs = twoJobs();
        (IBatchSettlement.EpochRef memory epoch, uint256[] memory entries) = commit(jobs);
        vm.prank(buyer);
        batch.challenge(epoch, entries, positionOf(entries, buyer));
        uint256 fees = earnedOf(hub);
        // Ids strictly increasing.
        if (batchJobId(buyer, jobs[0].auth.salt) > batchJobId(buyer, jobs[1].auth.salt)) {
            jobs = jobsOf(jobs[1], jobs[0]);
        }
        batch.answer(epoch, buyer, abi.encode(jobs));
        assertEq(earnedOf(hub), fees + STAKE, "the stake pays for the answer");
        assertEq(
            uint8(batch.challengeOf(hub, epoch.index, buyer).status),
            uint8(IBatchSettlement.ChallengeStatus.Answered)
        );
        assertFalse(batch.hubBook(hub).frozen);
    }

    function test_a_hub_that_charges_more_than_the_buyer_signed_for_is_caught_and_its_bond_pays() public {
        // The hub books 30 for a job the buyer capped at 20: it cannot show the job behind the debit.
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        IBatchSettlement.BatchJob memory padded = makeJob(BUYER_KEY, bytes32("a"), 0, one(27e18), 20e18);
        uint256[] memory entries = ledgerOf(jobsOf(padded));
        (IBatchSettlement.EpochRef memory epoch,) = commitWith(jobsOf(job), entries);
        uint256 debit = totalOf(padded);
        address challenger = vm.addr(CHALLENGER_KEY);
        vm.prank(challenger);
        batch.challenge(epoch, entries, positionOf(entries, buyer));

        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.AnswerMismatch.selector, totalOf(job), debit));
        batch.answer(epoch, buyer, abi.encode(jobsOf(job)));
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchJobErrors.PaymentAboveAuth.selector, batchJobId(buyer, bytes32("a")), debit, 20e18
            )
        );
        batch.answer(epoch, buyer, abi.encode(jobsOf(padded)));

        uint256 buyerBefore = balanceOf(buyer);
        uint256 challengerBefore = balanceOf(challenger);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.AnswerPeriodRunning.selector, uint40(block.timestamp + RESPONSE_WINDOW)
            )
        );
        batch.resolve(epoch, buyer);
        vm.warp(block.timestamp + RESPONSE_WINDOW + 1);
        batch.resolve(epoch, buyer);
        assertEq(balanceOf(buyer), buyerBefore + debit, "the victim gets the whole debit back");
        assertEq(balanceOf(challenger), challengerBefore + STAKE, "the stake comes back");
        assertEq(earnedOf(challenger), debit * REWARD_BPS / 10_000, "the reward is earned");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.HubFrozen.selector, hub));
        batch.withdrawEarnings(hub, 1);
        assertTrue(batch.hubBook(hub).frozen);
        vm.warp(block.timestamp + 1 days);
        vm.prank(hubSigner);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.HubFrozen.selector, hub));
        batch.commitEpoch(hub, bytes32(0), 0, noFunding(), new uint256[](0));
    }

    function test_a_challenge_comes_within_its_window_once_per_account_and_not_on_the_hub_entry() public {
        (IBatchSettlement.EpochRef memory epoch, uint256[] memory entries) = commit(twoJobs());
        vm.expectRevert(IBatchSettlement.HubEntry.selector);
        vm.prank(buyer);
        batch.challenge(epoch, entries, positionOf(entries, hub));
        vm.prank(buyer);
        batch.challenge(epoch, entries, positionOf(entries, buyer));
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.AlreadyChallenged.selector, buyer));
        batch.challenge(epoch, entries, positionOf(entries, buyer));
        vm.warp(block.timestamp + CHALLENGE_WINDOW + 1);
        vm.prank(buyer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.ChallengeWindowClosed.selector, uint256(epoch.committedAt) + CHALLENGE_WINDOW
            )
        );
        batch.challenge(epoch, entries, positionOf(entries, vm.addr(minerKey(0))));
        epoch.root = bytes32(uint256(1));
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.UnknownEpoch.selector, hub, 0));
        batch.challenge(epoch, entries, 0);
    }

    function test_a_job_without_its_buyers_signature_cannot_back_a_debit() public {
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        // The hub signs the authorisation itself.
        job.authSignature = sig(HUB_SIGNER_KEY, digest(batchSeparator(), authStructHash(job.auth)));
        (IBatchSettlement.EpochRef memory epoch, uint256[] memory entries) = commit(jobsOf(job));
        vm.prank(buyer);
        batch.challenge(epoch, entries, positionOf(entries, buyer));
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchJobErrors.InvalidAuthSignature.selector, batchJobId(buyer, bytes32("a"))
            )
        );
        batch.answer(epoch, buyer, abi.encode(jobsOf(job)));
    }

    // ------------------------------------------------------------ quorum (property 6)

    function test_a_k_of_n_job_needs_k_distinct_agreeing_assigned_miners_when_disputed() public {
        uint256[] memory charges = new uint256[](2);
        charges[0] = 3e18;
        charges[1] = 3e18;
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("k2"), 0, charges, 20e18);
        // The hub commits it with the second miner's output differing.
        job.receipts[1].receipt.outputHash = keccak256("other");
        job.receipts[1] = signed(job.receipts[1].receipt, 1, 3e18);
        (IBatchSettlement.EpochRef memory epoch, uint256[] memory entries) = commit(jobsOf(job));
        vm.prank(buyer);
        batch.challenge(epoch, entries, positionOf(entries, buyer));
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.OutputMismatch.selector, 1));
        batch.answer(epoch, buyer, abi.encode(jobsOf(job)));

        // One receipt for a 2-replica job does not count either.
        IBatchSettlement.BatchJob memory short = makeJob(BUYER_KEY, bytes32("k2"), 0, charges, 20e18);
        IBatchSettlement.BatchJob memory single = makeJob(BUYER_KEY, bytes32("k2"), 0, one(3e18), 20e18);
        single.auth = short.auth;
        single.authSignature = short.authSignature;
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.WrongReceiptCount.selector, 1, 2));
        batch.answer(epoch, buyer, abi.encode(jobsOf(single)));
    }

    function test_an_unassigned_miner_cannot_back_a_credit() public {
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        // Assignment signed by someone other than the hub's signer.
        job.receipts[0] = signedUnder(
            job.receipts[0].receipt,
            minerKey(0),
            0xBAD,
            10e18,
            domainSeparator(block.chainid, address(escrow))
        );
        (IBatchSettlement.EpochRef memory epoch, uint256[] memory entries) = commit(jobsOf(job));
        vm.prank(buyer);
        batch.challenge(epoch, entries, positionOf(entries, buyer));
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidAssignment.selector, 0));
        batch.answer(epoch, buyer, abi.encode(jobsOf(job)));
    }

    // ------------------------------------------------------------ forced claims (property 3)

    function test_a_miner_is_paid_without_the_hub_after_the_deadline() public {
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        address miner = vm.addr(minerKey(0));
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.ClaimOutsidePeriod.selector,
                batchJobId(buyer, bytes32("a")),
                uint256(job.auth.deadline) + 1,
                uint256(job.auth.deadline) + CLAIM_PERIOD
            )
        );
        batch.forceClaim(abi.encode(job));
        vm.warp(job.auth.deadline + 1);
        vm.prank(miner);
        bytes32 jobId = batch.forceClaim(abi.encode(job));
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.AlreadyClaimed.selector, jobId));
        batch.forceClaim(abi.encode(job));
        (address[] memory miners, uint256[] memory amounts) = payoutOf(job);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.ClaimNotPayable.selector, jobId));
        batch.payClaim(jobId, miners, amounts);
        vm.warp(block.timestamp + PROOF_WINDOW);
        uint256 buyerBefore = balanceOf(buyer);
        batch.payClaim(jobId, miners, amounts);
        assertEq(earnedOf(miner), 10e18);
        assertEq(balanceOf(buyer), buyerBefore - 10e18, "no commission on a forced claim");
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.ClaimNotPayable.selector, jobId));
        batch.payClaim(jobId, miners, amounts);
    }

    function test_a_job_paid_in_an_epoch_is_never_paid_again_by_a_claim() public {
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        (IBatchSettlement.EpochRef memory epoch,) = commit(jobsOf(job));
        vm.warp(job.auth.deadline + 1);
        bytes32 jobId = batch.forceClaim(abi.encode(job));
        (address[] memory miners, uint256[] memory amounts) = payoutOf(job);
        batch.contestClaim(jobId, inclusion(epoch, job, miners, amounts));
        assertEq(uint8(batch.claimOf(jobId).status), uint8(IBatchSettlement.ClaimStatus.Void));
        vm.warp(block.timestamp + PROOF_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.ClaimNotPayable.selector, jobId));
        batch.payClaim(jobId, miners, amounts);
    }

    function test_a_miner_shorted_in_an_epoch_is_paid_by_the_hub_bond_not_twice_by_the_buyer() public {
        // The hub credits miner 0 nothing for job a, and answers the miner's challenge without job a.
        IBatchSettlement.BatchJob memory a = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        IBatchSettlement.BatchJob memory b = makeJob(BUYER2_KEY, bytes32("b"), 0, one(4e18), 20e18);
        fundAccount(BUYER2_KEY, 100e18);
        uint256[] memory entries = ledgerOf(jobsOf(a, b));
        address miner = vm.addr(minerKey(0));
        // Move job a's charge from the miner to the hub's own entry.
        for (uint256 i; i < entries.length; ++i) {
            address acct = address(uint160(entries[i] >> 96));
            if (acct == miner) entries[i] = entry(miner, false, 4e18);
            if (acct == hub) entries[i] = entry(hub, false, (entries[i] & ((uint256(1) << 95) - 1)) + 10e18);
        }
        (IBatchSettlement.EpochRef memory epoch,) = commitWith(jobsOf(a, b), entries);
        vm.prank(miner);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.InsufficientBalance.selector, miner, 0, STAKE)
        );
        batch.challenge(epoch, entries, positionOf(entries, miner));
        fundAccount(minerKey(0), STAKE);
        vm.prank(miner);
        batch.challenge(epoch, entries, positionOf(entries, miner));
        batch.answer(epoch, miner, abi.encode(jobsOf(b)));
        bytes32 jobA = batchJobId(buyer, bytes32("a"));

        vm.warp(a.auth.deadline + 1);
        batch.forceClaim(abi.encode(a));
        (address[] memory miners, uint256[] memory amounts) = payoutOf(a);
        IBatchSettlement.InclusionProof memory p = inclusion(epoch, a, miners, amounts);
        p.answered[0] = new bytes32[](1);
        p.answered[0][0] = batchJobId(vm.addr(BUYER2_KEY), bytes32("b"));
        batch.contestClaim(jobA, p);
        assertTrue(batch.claimOf(jobA).hubPays);
        vm.warp(block.timestamp + PROOF_WINDOW);
        uint256 buyerBefore = balanceOf(buyer);
        uint256 hubBefore = balanceOf(hub);
        batch.payClaim(jobA, miners, amounts);
        assertEq(balanceOf(buyer), buyerBefore, "the buyer paid once, in the epoch");
        assertEq(balanceOf(hub), hubBefore - 10e18);
    }

    // ------------------------------------------------------------ duplicates and late jobs

    function test_a_job_committed_twice_is_proven_and_repaid_once() public {
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        (IBatchSettlement.EpochRef memory first,) = commit(jobsOf(job));
        bytes32[] memory proofA = job.proof;
        vm.warp(block.timestamp + CHALLENGE_WINDOW + RESPONSE_WINDOW);
        IBatchSettlement.BatchJob memory other = makeJob(BUYER_KEY, bytes32("o"), 1, one(1e18), 20e18);
        IBatchSettlement.BatchJob[] memory again = jobsOf(job, other);
        (IBatchSettlement.EpochRef memory second,) = commit(again);
        IBatchSettlement.Leaf memory leaf = leafOf(job);
        uint256 before = balanceOf(buyer);
        batch.proveDuplicate(first, leaf, proofA, second, leaf, again[0].proof);
        assertEq(balanceOf(buyer), before + leaf.total);
        assertTrue(batch.hubBook(hub).frozen);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.AlreadyProven.selector, leaf.jobId));
        batch.proveDuplicate(second, leaf, again[0].proof, first, leaf, proofA);
        vm.expectRevert(IBatchSettlement.NotDuplicate.selector);
        batch.proveDuplicate(first, leaf, proofA, first, leaf, proofA);
    }

    function test_a_job_committed_after_its_deadline_is_proven_late() public {
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        IBatchSettlement.Leaf memory leaf = leafOf(job);
        vm.expectRevert(); // nothing committed yet
        batch.proveLate(IBatchSettlement.EpochRef(hub, 0, bytes32(0), bytes32(0), 0), leaf, new bytes32[](0));
        vm.warp(job.auth.deadline);
        (IBatchSettlement.EpochRef memory epoch,) = commit(jobsOf(job));
        uint256 before = balanceOf(buyer);
        batch.proveLate(epoch, leaf, job.proof);
        assertEq(balanceOf(buyer), before + leaf.total);
        assertTrue(batch.hubBook(hub).frozen);
    }

    // ------------------------------------------------------------ setup and upgrades

    function test_parameters_that_would_strand_money_are_refused() public {
        IBatchSettlement.Params memory p = defaultParams();
        p.withdrawalDelay = AUTH_HORIZON;
        address impl = address(new BatchSettlement());
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.InvalidParams.selector,
                "withdrawalDelay must cover authHorizon + claimPeriod + proofWindow"
            )
        );
        new ERC1967Proxy(
            impl,
            abi.encodeCall(
                BatchSettlement.initialize,
                (token, IHubRegistry(address(registry)), escrow, verifier, address(fundsTimelock), p)
            )
        );
    }

    function test_only_the_funds_timelock_upgrades() public {
        address impl = address(new BatchSettlement());
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.NotFundsTimelock.selector, address(this)));
        batch.upgradeToAndCall(impl, "");
        vm.prank(address(fundsTimelock));
        batch.upgradeToAndCall(impl, "");
    }

    function test_job_ids_differ_from_the_escrow_and_views_match_the_fixture() public {
        assertTrue(verifier.jobIdFor(buyer, bytes32("a")) != escrow.jobIdFor(buyer, bytes32("a")));
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        assertEq(verifier.leafHash(leafOf(job)), leafHashOf(leafOf(job)));
        assertEq(verifier.hashJobAuth(job.auth), authStructHash(job.auth));
        assertEq(batch.jobAuthDigest(job.auth), digest(batchSeparator(), authStructHash(job.auth)));
        assertEq(batch.packEntry(buyer, true, false, 7), entry(buyer, true, 7));
        assertEq(batch.packEntry(buyer, false, true, 7), entry(buyer, false, 7) | (uint256(1) << 94));
    }

    // ------------------------------------------------------------ fuzz

    /// @dev Any honest epoch of any charges keeps tokens and balances equal.
    function testFuzz_an_honest_epoch_conserves_tokens(uint96 c0, uint96 c1, uint96 c2) public {
        uint256[] memory charges = new uint256[](3);
        charges[0] = bound(c0, 1, 50e18);
        charges[1] = bound(c1, 1, 50e18);
        charges[2] = bound(c2, 1, 50e18);
        IBatchSettlement.BatchJob memory k3 = makeJob(BUYER_KEY, bytes32("k3"), 0, charges, 200e18);
        IBatchSettlement.BatchJob memory k1 = makeJob(BUYER_KEY, bytes32("k1"), 3, one(charges[0]), 200e18);
        commit(jobsOf(k3, k1));
        uint256 sum = balanceOf(buyer) + balanceOf(hub) + earnedOf(hub) + balanceOf(vm.addr(CHALLENGER_KEY));
        for (uint256 i; i < 4; ++i) {
            sum += earnedOf(vm.addr(minerKey(i)));
        }
        assertEq(sum, token.balanceOf(address(batch)));
    }

    // ------------------------------------------------------------ helpers

    function payoutOf(IBatchSettlement.BatchJob memory job)
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

    function inclusion(
        IBatchSettlement.EpochRef memory epoch,
        IBatchSettlement.BatchJob memory job,
        address[] memory miners,
        uint256[] memory amounts
    ) internal pure returns (IBatchSettlement.InclusionProof memory p) {
        p.epoch = epoch;
        p.leaf = leafOf(job);
        p.proof = job.proof;
        p.miners = miners;
        p.amounts = amounts;
        p.answered = new bytes32[][](miners.length);
    }
}
