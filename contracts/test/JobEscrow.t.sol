// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IFogErrors, IReceiptErrors} from "../src/interfaces/IFogErrors.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {FogTypes} from "../src/FogTypes.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IHubRegistry} from "../src/interfaces/IHubRegistry.sol";
import {FogFixture} from "./utils/FogFixture.sol";

contract JobEscrowTest is FogFixture {
    bytes32 internal constant SALT = keccak256("salt");
    uint256 internal constant LOCKED = 100e18;

    // ------------------------------------------------------------------ open

    function test_openLocksPaymentAndRecordsJob() public {
        uint256 before = token.balanceOf(buyer);
        bytes32 expectedId = keccak256(abi.encode(buyer, SALT));
        uint64 deadline = uint64(block.timestamp + 1 days);
        vm.startPrank(buyer);
        token.approve(address(escrow), LOCKED);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobOpened(expectedId, buyer, hub, specHashOf(SALT), deadline, 2, LOCKED, 500);
        bytes32 jobId = escrow.open(SALT, hub, specHashOf(SALT), deadline, 2, LOCKED, MAX_DURATION);
        vm.stopPrank();

        assertEq(jobId, expectedId);
        assertEq(escrow.jobIdFor(buyer, SALT), expectedId);
        assertEq(token.balanceOf(buyer), before - LOCKED);
        assertEq(token.balanceOf(address(escrow)), LOCKED);
        IJobEscrow.Job memory job = escrow.getJob(jobId);
        assertEq(job.buyer, buyer);
        assertEq(job.hub, hub);
        assertEq(uint256(job.deadline), uint256(deadline));
        assertEq(uint256(job.replicas), 2);
        assertEq(uint256(job.maxPayment), LOCKED);
        assertEq(uint256(job.feeBps), 500);
        assertEq(job.specHash, specHashOf(SALT));
        assertTrue(job.status == IJobEscrow.JobStatus.Open);
    }

    function test_openWithPermitNeedsOneTransaction() public {
        uint64 deadline = uint64(block.timestamp + 1 days);
        (uint8 v, bytes32 r, bytes32 s) =
            permitSig(BUYER_KEY, address(escrow), LOCKED, block.timestamp + 1 hours);
        vm.prank(buyer);
        bytes32 jobId = escrow.openWithPermit(
            SALT, hub, specHashOf(SALT), deadline, 1, LOCKED, MAX_DURATION, block.timestamp + 1 hours, v, r, s
        );
        assertTrue(escrow.getJob(jobId).status == IJobEscrow.JobStatus.Open);
        assertEq(token.balanceOf(address(escrow)), LOCKED);
    }

    function test_openWithPermitSurvivesAFrontRunPermit() public {
        uint256 permitDeadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = permitSig(BUYER_KEY, address(escrow), LOCKED, permitDeadline);
        // Someone submits the permit first; the buyer's transaction still opens the job.
        token.permit(buyer, address(escrow), LOCKED, permitDeadline, v, r, s);
        vm.prank(buyer);
        escrow.openWithPermit(
            SALT,
            hub,
            specHashOf(SALT),
            uint64(block.timestamp + 1 days),
            1,
            LOCKED,
            MAX_DURATION,
            permitDeadline,
            v,
            r,
            s
        );
        assertEq(token.balanceOf(address(escrow)), LOCKED);
    }

    function test_openWithBadPermitFailsOnAllowance() public {
        (uint8 v, bytes32 r, bytes32 s) = permitSig(0xBAD, address(escrow), LOCKED, block.timestamp + 1 hours);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), 0, LOCKED
            )
        );
        vm.prank(buyer);
        escrow.openWithPermit(
            SALT,
            hub,
            specHashOf(SALT),
            uint64(block.timestamp + 1 days),
            1,
            LOCKED,
            MAX_DURATION,
            block.timestamp + 1 hours,
            v,
            r,
            s
        );
    }

    function test_openRejectsBadInput() public {
        vm.startPrank(buyer);
        token.approve(address(escrow), type(uint256).max);
        uint64 tomorrow = uint64(block.timestamp + 1 days);
        bytes32 spec = specHashOf(SALT);

        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.InvalidDeadline.selector, uint64(block.timestamp)));
        escrow.open(SALT, hub, spec, uint64(block.timestamp), 1, LOCKED, MAX_DURATION);
        uint64 far = uint64(block.timestamp + 366 days);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.InvalidDeadline.selector, far));
        escrow.open(SALT, hub, spec, far, 1, LOCKED, MAX_DURATION);
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidReplicas.selector, uint8(0)));
        escrow.open(SALT, hub, spec, tomorrow, 0, LOCKED, MAX_DURATION);
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidReplicas.selector, uint8(17)));
        escrow.open(SALT, hub, spec, tomorrow, 17, LOCKED, MAX_DURATION);
        vm.expectRevert(IJobEscrow.ZeroPayment.selector);
        escrow.open(SALT, hub, spec, tomorrow, 1, 0, MAX_DURATION);
        uint256 huge = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.PaymentTooLarge.selector, huge));
        escrow.open(SALT, hub, spec, tomorrow, 1, huge, MAX_DURATION);
        address stranger = address(0x5742);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, stranger, IHubRegistry.HubState.None)
        );
        escrow.open(SALT, stranger, spec, tomorrow, 1, LOCKED, MAX_DURATION);

        bytes32 jobId = escrow.open(SALT, hub, spec, tomorrow, 1, LOCKED, MAX_DURATION);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.JobExists.selector, jobId));
        escrow.open(SALT, hub, spec, tomorrow, 1, LOCKED, MAX_DURATION);
        vm.stopPrank();
    }

    function test_sameSaltFromAnotherBuyerIsAnotherJob() public {
        bytes32 mine = openJob(SALT, 1, LOCKED);
        address other = address(0x07);
        fund(other, LOCKED);
        vm.startPrank(other);
        token.approve(address(escrow), LOCKED);
        bytes32 theirs = escrow.open(
            SALT, hub, specHashOf(SALT), uint64(block.timestamp + 1 days), 1, LOCKED, MAX_DURATION
        );
        vm.stopPrank();
        assertTrue(mine != theirs);
    }

    function test_exitingHubTakesNoNewJobs() public {
        vm.prank(operator);
        registry.announceExit(hub);
        vm.startPrank(buyer);
        token.approve(address(escrow), LOCKED);
        vm.expectRevert(
            abi.encodeWithSelector(IHubRegistry.WrongState.selector, hub, IHubRegistry.HubState.Exiting)
        );
        escrow.open(SALT, hub, specHashOf(SALT), uint64(block.timestamp + 1 days), 1, LOCKED, MAX_DURATION);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- settle

    function test_settleK1PaysMinerHubAndRefundsBuyer() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 1, 40e18);
        address miner = list[0].receipt.miner;
        uint256 buyerBefore = token.balanceOf(buyer);
        bytes32 receiptHash = receiptStructHash(list[0].receipt);

        vm.expectEmit(address(escrow));
        emit IJobEscrow.ReceiptSettled(jobId, receiptHash, list[0].receipt);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobSettled(jobId, 40e18, 2e18, 58e18);
        vm.prank(address(0xCAFE)); // anyone may submit
        escrow.settle(jobId, list);

        assertEq(token.balanceOf(miner), 40e18);
        assertEq(token.balanceOf(hub), MIN_DEPOSIT + 2e18);
        assertEq(token.balanceOf(buyer), buyerBefore + 58e18);
        assertEq(token.balanceOf(address(escrow)), 0);
        bytes32[] memory one = new bytes32[](1);
        one[0] = receiptHash;
        assertEq(escrow.evidence(jobId), keccak256(abi.encodePacked(one)));
        assertEq(escrow.evidence(jobId), escrow.receiptsCommitment(one));
        assertTrue(escrow.getJob(jobId).status == IJobEscrow.JobStatus.Settled);
    }

    function test_settleK3PaysEveryMiner() public {
        bytes32 jobId = openJob(SALT, 3, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 3, 10e18);
        assertEq(escrow.evidence(jobId), bytes32(0), "no evidence before settlement");
        escrow.settle(jobId, list);
        bytes32[] memory hashes = new bytes32[](3);
        for (uint256 i; i < 3; ++i) {
            assertEq(token.balanceOf(list[i].receipt.miner), 10e18);
            hashes[i] = receiptStructHash(list[i].receipt);
        }
        assertEq(escrow.evidence(jobId), keccak256(abi.encodePacked(hashes)));
        assertEq(token.balanceOf(hub), MIN_DEPOSIT + 1.5e18);
    }

    function test_zeroChargeSettles() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        uint256 before = token.balanceOf(buyer);
        escrow.settle(jobId, quorum(jobId, 1, 0));
        assertEq(token.balanceOf(buyer), before + LOCKED);
    }

    function test_attack_forgedReceiptSignature() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        FogTypes.Receipt memory r = receiptFor(jobId, 0, 1e18, keccak256("output"));
        IJobEscrow.SignedReceipt[] memory list = new IJobEscrow.SignedReceipt[](1);
        list[0] = signedUnder(r, 0xE11, HUB_SIGNER_KEY, 1e18, domainSeparator(block.chainid, address(escrow)));
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidReceiptSignature.selector, 0));
        escrow.settle(jobId, list);
    }

    function test_attack_forgedAssignmentSignature() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        FogTypes.Receipt memory r = receiptFor(jobId, 0, 1e18, keccak256("output"));
        IJobEscrow.SignedReceipt[] memory list = new IJobEscrow.SignedReceipt[](1);
        list[0] = signedUnder(r, minerKey(0), 0xE11, 1e18, domainSeparator(block.chainid, address(escrow)));
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidAssignment.selector, 0));
        escrow.settle(jobId, list);
    }

    function test_attack_garbageSignatureBytes() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 1, 1e18);
        list[0].receiptSignature = hex"1234";
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidReceiptSignature.selector, 0));
        escrow.settle(jobId, list);
    }

    function test_attack_highSSignatureRefused() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 1, 1e18);
        bytes memory s0 = list[0].receiptSignature;
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(s0, 32))
            s := mload(add(s0, 64))
            v := byte(0, mload(add(s0, 96)))
        }
        uint256 n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
        list[0].receiptSignature =
            abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidReceiptSignature.selector, 0));
        escrow.settle(jobId, list);
    }

    function test_attack_signatureForAnotherChain() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        FogTypes.Receipt memory r = receiptFor(jobId, 0, 1e18, keccak256("output"));
        IJobEscrow.SignedReceipt[] memory list = new IJobEscrow.SignedReceipt[](1);
        list[0] = signedUnder(
            r, minerKey(0), HUB_SIGNER_KEY, 1e18, domainSeparator(block.chainid + 1, address(escrow))
        );
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidAssignment.selector, 0));
        escrow.settle(jobId, list);
    }

    function test_attack_signatureForAnotherEscrow() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        FogTypes.Receipt memory r = receiptFor(jobId, 0, 1e18, keccak256("output"));
        IJobEscrow.SignedReceipt[] memory list = new IJobEscrow.SignedReceipt[](1);
        list[0] =
            signedUnder(r, minerKey(0), HUB_SIGNER_KEY, 1e18, domainSeparator(block.chainid, address(0xE5C)));
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidAssignment.selector, 0));
        escrow.settle(jobId, list);
    }

    function test_attack_chainForkChangesDomain() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 1, 1e18);
        vm.chainId(block.chainid + 7); // the same signatures replayed on a forked chain
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidAssignment.selector, 0));
        escrow.settle(jobId, list);
    }

    function test_attack_replayedSettlement() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 1, 1e18);
        escrow.settle(jobId, list);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.JobNotOpen.selector, jobId, IJobEscrow.JobStatus.Settled)
        );
        escrow.settle(jobId, list);
    }

    function test_attack_receiptReplayedOnAnotherJob() public {
        bytes32 first = openJob(SALT, 1, LOCKED);
        bytes32 second = openJob(keccak256("other"), 1, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(first, 1, 1e18);
        escrow.settle(first, list);
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.ReceiptMismatch.selector, 0));
        escrow.settle(second, list);
    }

    function test_attack_minerTheHubDidNotAssign() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        // The hub assigned miner 0; miner 1 signs a receipt and reuses miner 0's assignment signature.
        IJobEscrow.SignedReceipt memory assigned = quorum(jobId, 1, 1e18)[0];
        FogTypes.Receipt memory r = receiptFor(jobId, 1, 1e18, keccak256("output"));
        IJobEscrow.SignedReceipt[] memory list = new IJobEscrow.SignedReceipt[](1);
        list[0] = signed(r, 1, 1e18);
        list[0].assignmentSignature = assigned.assignmentSignature;
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidAssignment.selector, 0));
        escrow.settle(jobId, list);
    }

    function test_attack_sameMinerTwiceInQuorum() public {
        bytes32 jobId = openJob(SALT, 2, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 2, 1e18);
        list[1] = list[0];
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.DuplicateMiner.selector, list[0].receipt.miner));
        escrow.settle(jobId, list);
    }

    function test_attack_disagreeingOutputs() public {
        bytes32 jobId = openJob(SALT, 2, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 2, 1e18);
        list[1] = signed(receiptFor(jobId, 1, 1e18, keccak256("cheat")), 1, 1e18);
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.OutputMismatch.selector, 1));
        escrow.settle(jobId, list);
    }

    function test_attack_chargeAboveAssignment() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = new IJobEscrow.SignedReceipt[](1);
        list[0] = signed(receiptFor(jobId, 0, 5e18, keccak256("output")), 0, 4e18);
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.ChargeAboveAssignment.selector, 0, 5e18, 4e18));
        escrow.settle(jobId, list);
    }

    function test_attack_paymentAboveLocked() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        // 100e18 charged + 5% commission exceeds the 100e18 locked.
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 1, 100e18);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.PaymentExceedsLocked.selector, 105e18, LOCKED));
        escrow.settle(jobId, list);
    }

    function test_settleRejectsWrongCountTimesAndDeadline() public {
        bytes32 jobId = openJob(SALT, 2, LOCKED);
        IJobEscrow.SignedReceipt[] memory one = quorum(jobId, 1, 1e18);
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.WrongReceiptCount.selector, 1, uint8(2)));
        escrow.settle(jobId, one);

        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 2, 1e18);
        FogTypes.Receipt memory r = list[0].receipt;
        (r.startedAt, r.endedAt) = (r.endedAt, r.startedAt);
        list[0] = signed(r, 0, 1e18);
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidTimes.selector, 0));
        escrow.settle(jobId, list);

        IJobEscrow.SignedReceipt[] memory good = quorum(jobId, 2, 1e18);
        uint40 deadline = escrow.getJob(jobId).deadline;
        vm.warp(block.timestamp + 1 days + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.DeadlinePassed.selector, deadline));
        escrow.settle(jobId, good);

        bytes32 unknown = keccak256("nope");
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.JobNotOpen.selector, unknown, IJobEscrow.JobStatus.None)
        );
        escrow.settle(unknown, good);
    }

    /// Issue 14, point 2: rotating the signer never voids assignments already issued; it applies to
    /// jobs opened afterwards, whose assignments the old key can no longer sign.
    function test_point2_signerRotationKeepsIssuedAssignments() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 1, 1e18);
        uint256 newSignerKey = 0x5161;
        vm.prank(operator);
        registry.setSigner(hub, vm.addr(newSignerKey));
        assertEq(registry.signerOf(hub, 0), hubSigner);
        assertEq(registry.signerOf(hub, 1), vm.addr(newSignerKey));
        assertEq(registry.signerOf(hub, 2), address(0));
        escrow.settle(jobId, list);
        assertEq(token.balanceOf(list[0].receipt.miner), 1e18, "the miner's right survived the rotation");

        // A job opened after the rotation needs the new key's assignments.
        bytes32 later = openJob(keccak256("later"), 1, LOCKED);
        assertEq(uint256(escrow.getJob(later).signerVersion), 1);
        IJobEscrow.SignedReceipt[] memory old = quorum(later, 1, 1e18);
        vm.expectRevert(abi.encodeWithSelector(IReceiptErrors.InvalidAssignment.selector, 0));
        escrow.settle(later, old);
        FogTypes.Receipt memory r = receiptFor(later, 0, 1e18, keccak256("output"));
        IJobEscrow.SignedReceipt[] memory fresh = new IJobEscrow.SignedReceipt[](1);
        fresh[0] =
            signedUnder(r, minerKey(0), newSignerKey, 1e18, domainSeparator(block.chainid, address(escrow)));
        escrow.settle(later, fresh);
    }

    // ---------------------------------------------------------------- refund

    function test_refundAfterDeadlineByBuyer() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        uint256 before = token.balanceOf(buyer);
        vm.warp(block.timestamp + 1 days + 1);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobRefunded(jobId, buyer, LOCKED);
        vm.prank(buyer);
        escrow.refund(jobId);
        assertEq(token.balanceOf(buyer), before + LOCKED);
        assertTrue(escrow.getJob(jobId).status == IJobEscrow.JobStatus.Refunded);
    }

    function test_attack_refundBeforeDeadline() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.DeadlineNotReached.selector, escrow.getJob(jobId).deadline)
        );
        vm.prank(buyer);
        escrow.refund(jobId);
    }

    function test_attack_refundBySomeoneElse() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        vm.warp(block.timestamp + 1 days + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.NotBuyer.selector, operator));
        vm.prank(operator);
        escrow.refund(jobId);
    }

    function test_attack_refundAfterSettle() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        escrow.settle(jobId, quorum(jobId, 1, 1e18));
        vm.warp(block.timestamp + 1 days + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.JobNotOpen.selector, jobId, IJobEscrow.JobStatus.Settled)
        );
        vm.prank(buyer);
        escrow.refund(jobId);
    }

    function test_attack_settleAfterRefund() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        IJobEscrow.SignedReceipt[] memory list = quorum(jobId, 1, 1e18);
        vm.warp(block.timestamp + 1 days + 1);
        vm.prank(buyer);
        escrow.refund(jobId);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.JobNotOpen.selector, jobId, IJobEscrow.JobStatus.Refunded)
        );
        escrow.settle(jobId, list);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.JobNotOpen.selector, jobId, IJobEscrow.JobStatus.Refunded)
        );
        vm.prank(buyer);
        escrow.refund(jobId);
    }

    // -------------------------------------------------------- administration

    function test_initializeOnlyOnceAndNotOnImplementation() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        escrow.initialize(token, IHubRegistry(address(registry)), address(timelock));
        JobEscrow impl = new JobEscrow();
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        impl.initialize(token, IHubRegistry(address(registry)), address(timelock));
    }

    function test_initializeRejectsZeroAddresses() public {
        address impl = address(new JobEscrow());
        vm.expectRevert(IFogErrors.ZeroAddress.selector);
        new ERC1967Proxy(
            impl,
            abi.encodeCall(
                JobEscrow.initialize, (IERC20(address(0)), IHubRegistry(address(registry)), address(timelock))
            )
        );
    }

    function test_attack_upgradeByAnyoneButTimelock() public {
        address impl = address(new JobEscrow());
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.NotFundsTimelock.selector, operator));
        vm.prank(operator);
        escrow.upgradeToAndCall(impl, "");
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.NotFundsTimelock.selector, address(timelock)));
        vm.prank(address(timelock));
        escrow.upgradeToAndCall(impl, "");
    }

    function test_viewsMatchHandComputedHashes() public {
        FogTypes.Receipt memory r = receiptFor(keccak256("j"), 0, 3, keccak256("o"));
        assertEq(escrow.hashReceipt(r), receiptStructHash(r));
        FogTypes.Assignment memory a = FogTypes.Assignment(r.jobId, r.specHash, r.hub, r.miner, 3);
        assertEq(escrow.hashAssignment(a), assignmentStructHash(r, 3));
        assertEq(escrow.domainSeparator(), domainSeparator(block.chainid, address(escrow)));
        assertEq(
            escrow.typedDataDigest(bytes32(uint256(1))), digest(escrow.domainSeparator(), bytes32(uint256(1)))
        );
        (IERC20 t, IHubRegistry reg, address tl) = escrow.wiring();
        assertEq(address(t), address(token));
        assertEq(address(reg), address(registry));
        assertEq(tl, address(fundsTimelock));
    }

    /// The hub gives a job up (cancelled before it ran, or broken): the buyer gets everything back at
    /// once; nobody but the job's own hub signer can do it.
    function test_hubReleasesAJobAndTheBuyerIsRefundedAtOnce() public {
        bytes32 jobId = openJob(SALT, 1, LOCKED);
        uint256 before = token.balanceOf(buyer);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.NotHubSigner.selector, buyer, hubSigner));
        vm.prank(buyer);
        escrow.release(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.NotHubSigner.selector, operator, hubSigner));
        vm.prank(operator);
        escrow.release(jobId);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobReleased(jobId, buyer, LOCKED);
        vm.prank(hubSigner);
        escrow.release(jobId);
        assertEq(token.balanceOf(buyer), before + LOCKED);
        assertTrue(escrow.getJob(jobId).status == IJobEscrow.JobStatus.Refunded);
        assertEq(registry.hubInfo(hub).openJobs, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.JobNotOpen.selector, jobId, IJobEscrow.JobStatus.Refunded)
        );
        vm.prank(hubSigner);
        escrow.release(jobId);
        // After a rotation, the job's own signer still releases it; the new one does not.
        bytes32 other = openJob(keccak256("other"), 1, LOCKED);
        vm.prank(operator);
        registry.setSigner(hub, address(0x5161));
        vm.expectRevert(abi.encodeWithSelector(IJobEscrow.NotHubSigner.selector, address(0x5161), hubSigner));
        vm.prank(address(0x5161));
        escrow.release(other);
        vm.prank(hubSigner);
        escrow.release(other);
    }
}
