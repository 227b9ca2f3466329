// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {FogTypes} from "./FogTypes.sol";
import {IBatchSettlement} from "./interfaces/IBatchSettlement.sol";
import {IBatchVerifier} from "./interfaces/IBatchVerifier.sol";
import {IHubRegistry} from "./interfaces/IHubRegistry.sol";
import {IJobEscrow} from "./interfaces/IJobEscrow.sol";

/// @title BatchVerifier
/// @notice The evidence checks of the batched path, apart from BatchSettlement so that each fits the
///         contract size limit. Stateless: it holds nothing and trusts nothing it is given except the
///         registry and the domain separators its caller passes.
contract BatchVerifier is IBatchVerifier {
    uint16 internal constant BPS = 10_000;
    uint16 internal constant MAX_REPLICAS = 16;
    /// @notice EIP-712 type of a buyer's JobAuth.
    bytes32 public constant JOB_AUTH_TYPEHASH = keccak256(
        "JobAuth(bytes32 salt,bytes32 specHash,address hub,uint256 maxPayment,uint64 deadline,uint16 replicas,uint16 maxFeeBps)"
    );
    /// @notice Domain tag of batched job ids: never equal to a per-job escrow id (a different preimage).
    bytes32 public constant BATCH_JOB_TAG = keccak256("fog.batch.job");

    /// @dev What every receipt of a job must match.
    struct Expected {
        bytes32 jobId;
        bytes32 specHash;
        address hub;
        bytes32 outputHash;
        address hubSigner;
        bytes32 separator;
    }

    /// @inheritdoc IBatchVerifier
    function checkAnswer(bytes calldata encodedJobs, Context calldata ctx)
        external
        view
        returns (Answer memory a)
    {
        IBatchSettlement.BatchJob[] memory jobs = abi.decode(encodedJobs, (IBatchSettlement.BatchJob[]));
        a.revealed = new Revealed[](jobs.length);
        bytes32[] memory ids = new bytes32[](jobs.length);
        for (uint256 i; i < jobs.length; ++i) {
            IBatchSettlement.BatchJob memory job = jobs[i];
            Checked memory k = _verify(job, ctx.hub, job.feeBps, ctx);
            if (i != 0 && k.jobId <= ids[i - 1]) revert JobsOutOfOrder(i);
            ids[i] = k.jobId;
            if (job.auth.deadline <= ctx.committedAt) {
                revert LateInclusion(k.jobId, job.auth.deadline, ctx.committedAt);
            }
            if (!MerkleProof.verify(job.proof, ctx.root, k.leaf)) revert NotInEpoch(k.jobId);
            if (job.buyer == ctx.account) a.paid += k.total;
            for (uint256 j; j < job.receipts.length; ++j) {
                if (job.receipts[j].receipt.miner == ctx.account) {
                    a.earned += job.receipts[j].receipt.amountCharged;
                }
            }
            a.revealed[i] = Revealed({jobId: k.jobId, leaf: k.leaf, receiptsCommitment: k.receiptsCommitment});
        }
        a.answeredJobs = keccak256(abi.encodePacked(ids));
    }

    /// @inheritdoc IBatchVerifier
    function checkClaim(bytes calldata encodedJob, Context calldata ctx)
        external
        view
        returns (Claimed memory c)
    {
        IBatchSettlement.BatchJob memory job = abi.decode(encodedJob, (IBatchSettlement.BatchJob));
        // No commission on a job the hub did not settle.
        Checked memory k = _verify(job, job.auth.hub, 0, ctx);
        uint256 n = job.receipts.length;
        address[] memory miners = new address[](n);
        uint256[] memory amounts = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            miners[i] = job.receipts[i].receipt.miner;
            amounts[i] = job.receipts[i].receipt.amountCharged;
        }
        c = Claimed({
            jobId: k.jobId,
            hub: job.auth.hub,
            buyer: job.buyer,
            deadline: job.auth.deadline,
            minersTotal: k.minersTotal,
            payout: keccak256(abi.encode(miners, amounts)),
            receiptsCommitment: k.receiptsCommitment
        });
    }

    /// @dev Checks one job whole: the buyer's JobAuth signature and terms, the k receipts (as the
    ///      escrow checks them, under its domain) and the payment; returns its amounts and leaf.
    function _verify(IBatchSettlement.BatchJob memory job, address hub, uint16 feeBps, Context calldata ctx)
        private
        view
        returns (Checked memory k)
    {
        IBatchSettlement.JobAuth memory auth = job.auth;
        bytes32 authHash = keccak256(abi.encode(JOB_AUTH_TYPEHASH, auth));
        k.jobId = jobIdFor(job.buyer, auth.salt);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(
            MessageHashUtils.toTypedDataHash(ctx.batchSeparator, authHash), job.authSignature
        );
        if (err != ECDSA.RecoverError.NoError || signer != job.buyer) revert InvalidAuthSignature(k.jobId);
        if (auth.hub != hub) revert WrongHub(k.jobId, auth.hub);
        if (feeBps > auth.maxFeeBps) revert FeeAboveAuth(k.jobId, feeBps, auth.maxFeeBps);
        if (auth.replicas == 0 || auth.replicas > MAX_REPLICAS) revert InvalidReplicas(auth.replicas);
        if (job.receipts.length != auth.replicas) {
            revert WrongReceiptCount(job.receipts.length, auth.replicas);
        }
        Expected memory expected = Expected({
            jobId: k.jobId,
            specHash: auth.specHash,
            hub: hub,
            outputHash: job.receipts[0].receipt.outputHash,
            hubSigner: IHubRegistry(ctx.registry).signerOf(hub, job.signerVersion),
            separator: ctx.escrowSeparator
        });
        (k.minersTotal, k.receiptsCommitment) = _checkReceipts(job.receipts, expected);
        k.total = k.minersTotal + k.minersTotal * feeBps / BPS;
        if (k.total > auth.maxPayment || k.total > type(uint96).max) {
            revert PaymentAboveAuth(k.jobId, k.total, auth.maxPayment);
        }
        k.leaf = _leafHash(
            IBatchSettlement.Leaf({
                jobId: k.jobId,
                buyer: job.buyer,
                authHash: authHash,
                receiptsCommitment: k.receiptsCommitment,
                // forge-lint: disable-next-line(unsafe-typecast) checked against type(uint96).max above
                total: uint96(k.total),
                deadline: auth.deadline,
                signerVersion: job.signerVersion,
                feeBps: feeBps
            })
        );
    }

    /// @dev The receipts' total charge and commitment; reverts on the first that does not count.
    function _checkReceipts(IJobEscrow.SignedReceipt[] memory receipts, Expected memory expected)
        private
        pure
        returns (uint256 minersTotal, bytes32 commitment)
    {
        bytes32[] memory hashes = new bytes32[](receipts.length);
        for (uint256 i; i < receipts.length; ++i) {
            FogTypes.Receipt memory receipt = receipts[i].receipt;
            hashes[i] = _checkReceipt(receipts[i], i, expected);
            for (uint256 j; j < i; ++j) {
                if (receipts[j].receipt.miner == receipt.miner) revert DuplicateMiner(receipt.miner);
            }
            minersTotal += receipt.amountCharged;
        }
        commitment = keccak256(abi.encodePacked(hashes));
    }

    /// @dev Checks one receipt as the escrow does; returns its struct hash.
    function _checkReceipt(IJobEscrow.SignedReceipt memory signed, uint256 index, Expected memory expected)
        private
        pure
        returns (bytes32 receiptHash)
    {
        FogTypes.Receipt memory receipt = signed.receipt;
        if (
            receipt.jobId != expected.jobId || receipt.specHash != expected.specHash
                || receipt.hub != expected.hub
        ) {
            revert ReceiptMismatch(index);
        }
        if (receipt.outputHash != expected.outputHash) revert OutputMismatch(index);
        if (receipt.endedAt < receipt.startedAt) revert InvalidTimes(index);
        if (receipt.amountCharged > signed.maxCharge) {
            revert ChargeAboveAssignment(index, receipt.amountCharged, signed.maxCharge);
        }
        bytes32 assignmentHash = keccak256(
            abi.encode(
                FogTypes.ASSIGNMENT_TYPEHASH,
                receipt.jobId,
                receipt.specHash,
                receipt.hub,
                receipt.miner,
                signed.maxCharge
            )
        );
        (address assigner, ECDSA.RecoverError aErr,) = ECDSA.tryRecover(
            MessageHashUtils.toTypedDataHash(expected.separator, assignmentHash), signed.assignmentSignature
        );
        if (
            aErr != ECDSA.RecoverError.NoError || expected.hubSigner == address(0)
                || assigner != expected.hubSigner
        ) {
            revert InvalidAssignment(index);
        }
        receiptHash = keccak256(abi.encode(FogTypes.RECEIPT_TYPEHASH, receipt));
        (address miner, ECDSA.RecoverError rErr,) = ECDSA.tryRecover(
            MessageHashUtils.toTypedDataHash(expected.separator, receiptHash), signed.receiptSignature
        );
        if (rErr != ECDSA.RecoverError.NoError || miner != receipt.miner) {
            revert InvalidReceiptSignature(index);
        }
    }

    /// @inheritdoc IBatchVerifier
    function jobIdFor(address buyer, bytes32 salt) public pure returns (bytes32) {
        return keccak256(abi.encode(BATCH_JOB_TAG, buyer, salt));
    }

    /// @inheritdoc IBatchVerifier
    function hashJobAuth(IBatchSettlement.JobAuth calldata auth) external pure returns (bytes32) {
        return keccak256(abi.encode(JOB_AUTH_TYPEHASH, auth));
    }

    /// @inheritdoc IBatchVerifier
    function leafHash(IBatchSettlement.Leaf calldata leaf) external pure returns (bytes32) {
        return _leafHash(leaf);
    }

    function _leafHash(IBatchSettlement.Leaf memory leaf) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(leaf))));
    }
}
