// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {BatchSettlement} from "../../src/BatchSettlement.sol";
import {BatchVerifier} from "../../src/BatchVerifier.sol";
import {FogTypes} from "../../src/FogTypes.sol";
import {IBatchSettlement} from "../../src/interfaces/IBatchSettlement.sol";
import {IHubRegistry} from "../../src/interfaces/IHubRegistry.sol";
import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";
import {FogFixture} from "./FogFixture.sol";

/// @dev The whole system plus the batched path, and helpers that build jobs, leaves, Merkle trees and
///      ledgers by hand (independently of the contract under test).
abstract contract BatchFixture is FogFixture {
    uint32 internal constant CHALLENGE_WINDOW = 1 hours;
    uint32 internal constant RESPONSE_WINDOW = 1 hours;
    uint32 internal constant CLAIM_PERIOD = 1 days;
    uint32 internal constant PROOF_WINDOW = 2 hours;
    uint32 internal constant AUTH_HORIZON = 2 days;
    uint32 internal constant WITHDRAWAL_DELAY = 4 days;
    uint16 internal constant REWARD_BPS = 1000;
    uint96 internal constant STAKE = 100e18;
    uint16 internal constant FEE_BPS = 500;
    uint256 internal constant BOND = 100_000e18;

    bytes32 internal constant JOB_AUTH_TYPEHASH = keccak256(
        "JobAuth(bytes32 salt,bytes32 specHash,address hub,uint256 maxPayment,uint64 deadline,uint16 replicas,uint16 maxFeeBps)"
    );

    BatchSettlement internal batch;
    BatchVerifier internal verifier;

    function setUp() public virtual override {
        super.setUp();
        verifier = new BatchVerifier();
        batch = BatchSettlement(
            address(
                new ERC1967Proxy(
                    address(new BatchSettlement()),
                    abi.encodeCall(
                        BatchSettlement.initialize,
                        (
                            token,
                            IHubRegistry(address(registry)),
                            escrow,
                            verifier,
                            address(fundsTimelock),
                            defaultParams()
                        )
                    )
                )
            )
        );
        // The hub's bond, put up by its operator.
        vm.startPrank(operator);
        token.approve(address(batch), BOND);
        batch.deposit(hub, BOND);
        vm.stopPrank();
        fundAccount(BUYER_KEY, 10_000e18);
    }

    function defaultParams() internal pure returns (IBatchSettlement.Params memory) {
        return IBatchSettlement.Params({
            challengeWindow: CHALLENGE_WINDOW,
            responseWindow: RESPONSE_WINDOW,
            claimPeriod: CLAIM_PERIOD,
            proofWindow: PROOF_WINDOW,
            authHorizon: AUTH_HORIZON,
            withdrawalDelay: WITHDRAWAL_DELAY,
            rewardBps: REWARD_BPS,
            challengeStake: STAKE
        });
    }

    /// @dev Gives the key's address tokens and deposits them with a permit.
    function fundAccount(uint256 key, uint256 amount) internal {
        address who = vm.addr(key);
        fund(who, amount);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = permitSig(key, address(batch), amount, deadline);
        vm.prank(who);
        batch.depositWithPermit(amount, deadline, v, r, s);
    }

    function balanceOf(address account) internal view returns (uint256) {
        return batch.accountOf(account).balance;
    }

    function earnedOf(address account) internal view returns (uint256) {
        return batch.accountOf(account).earned;
    }

    // ------------------------------------------------------------------ jobs

    function batchJobId(address buyer_, bytes32 salt) internal pure returns (bytes32) {
        return keccak256(abi.encode(keccak256("fog.batch.job"), buyer_, salt));
    }

    function authOf(bytes32 salt, uint16 replicas, uint256 maxPayment)
        internal
        view
        returns (IBatchSettlement.JobAuth memory)
    {
        return IBatchSettlement.JobAuth({
            salt: salt,
            specHash: specHashOf(salt),
            hub: hub,
            maxPayment: maxPayment,
            deadline: uint64(block.timestamp + 1 days),
            replicas: replicas,
            maxFeeBps: FEE_BPS
        });
    }

    function authStructHash(IBatchSettlement.JobAuth memory a) internal pure returns (bytes32) {
        return keccak256(abi.encode(JOB_AUTH_TYPEHASH, a));
    }

    function batchSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("Fog Batch"), keccak256("1"), block.chainid, address(batch))
        );
    }

    /// @dev A job of `buyerKey` with `charges.length` receipts from miners `firstMiner`.., all agreeing.
    function makeJob(
        uint256 buyerKey,
        bytes32 salt,
        uint256 firstMiner,
        uint256[] memory charges,
        uint256 maxPayment
    ) internal view returns (IBatchSettlement.BatchJob memory job) {
        return makeJobAt(buyerKey, salt, firstMiner, charges, maxPayment, block.timestamp);
    }

    /// @dev `makeJob` as made at time `at` (so that a job can be rebuilt identically later).
    function makeJobAt(
        uint256 buyerKey,
        bytes32 salt,
        uint256 firstMiner,
        uint256[] memory charges,
        uint256 maxPayment,
        uint256 madeAt
    ) internal view returns (IBatchSettlement.BatchJob memory job) {
        // forge-lint: disable-next-line(unsafe-typecast) test sizes are tiny
        job.auth = authOf(salt, uint16(charges.length), maxPayment);
        job.auth.deadline = uint64(madeAt + 1 days);
        job.buyer = vm.addr(buyerKey);
        job.authSignature = sig(buyerKey, digest(batchSeparator(), authStructHash(job.auth)));
        job.signerVersion = 0;
        job.feeBps = FEE_BPS;
        bytes32 jobId = batchJobId(job.buyer, salt);
        job.receipts = new IJobEscrow.SignedReceipt[](charges.length);
        for (uint256 i; i < charges.length; ++i) {
            FogTypes.Receipt memory r;
            r.jobId = jobId;
            r.specHash = job.auth.specHash;
            r.hub = hub;
            r.miner = vm.addr(minerKey(firstMiner + i));
            r.imageId = keccak256("image");
            r.outputHash = keccak256("output");
            r.startedAt = uint64(madeAt);
            r.endedAt = uint64(madeAt + 60);
            r.amountCharged = charges[i];
            job.receipts[i] = signed(r, firstMiner + i, charges[i]);
        }
    }

    function one(uint256 charge) internal pure returns (uint256[] memory list) {
        list = new uint256[](1);
        list[0] = charge;
    }

    function minersTotal(IBatchSettlement.BatchJob memory job) internal pure returns (uint256 total) {
        for (uint256 i; i < job.receipts.length; ++i) {
            total += job.receipts[i].receipt.amountCharged;
        }
    }

    function totalOf(IBatchSettlement.BatchJob memory job) internal pure returns (uint256) {
        uint256 m = minersTotal(job);
        return m + m * job.feeBps / 10_000;
    }

    function leafOf(IBatchSettlement.BatchJob memory job)
        internal
        pure
        returns (IBatchSettlement.Leaf memory)
    {
        bytes32[] memory hashes = new bytes32[](job.receipts.length);
        for (uint256 i; i < job.receipts.length; ++i) {
            hashes[i] = receiptStructHash(job.receipts[i].receipt);
        }
        return IBatchSettlement.Leaf({
            jobId: batchJobId(job.buyer, job.auth.salt),
            buyer: job.buyer,
            authHash: authStructHash(job.auth),
            receiptsCommitment: keccak256(abi.encodePacked(hashes)),
            // forge-lint: disable-next-line(unsafe-typecast) test amounts are small
            total: uint96(totalOf(job)),
            deadline: job.auth.deadline,
            signerVersion: job.signerVersion,
            feeBps: job.feeBps
        });
    }

    function leafHashOf(IBatchSettlement.Leaf memory leaf) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(leaf))));
    }

    // ------------------------------------------------------------ Merkle trees

    /// @dev Root of a sorted-pair tree (OpenZeppelin's MerkleProof convention), odd nodes carried up.
    function rootOf(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            level = nextLevel(level);
        }
        return level[0];
    }

    function proofOf(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory proof) {
        bytes32[] memory scratch = new bytes32[](32);
        uint256 n;
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) scratch[n++] = level[sibling];
            level = nextLevel(level);
            index /= 2;
        }
        proof = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            proof[i] = scratch[i];
        }
    }

    function nextLevel(bytes32[] memory level) private pure returns (bytes32[] memory up) {
        up = new bytes32[]((level.length + 1) / 2);
        for (uint256 i; i < up.length; ++i) {
            uint256 l = 2 * i;
            if (l + 1 < level.length) {
                (bytes32 a, bytes32 b) =
                    level[l] < level[l + 1] ? (level[l], level[l + 1]) : (level[l + 1], level[l]);
                up[i] = keccak256(abi.encodePacked(a, b));
            } else {
                up[i] = level[l];
            }
        }
    }

    // ------------------------------------------------------------------ epochs

    function entry(address account, bool debit, uint256 amount) internal pure returns (uint256) {
        return (uint256(uint160(account)) << 96) | (debit ? uint256(1) << 95 : 0) | amount;
    }

    /// @dev The honest ledger of `jobs`: buyers debited their totals, miners credited their charges,
    ///      the hub its commissions; one entry per account, sorted.
    function ledgerOf(IBatchSettlement.BatchJob[] memory jobs)
        internal
        view
        returns (uint256[] memory entries)
    {
        address[] memory accounts = new address[](jobs.length * 18 + 1);
        int256[] memory deltas = new int256[](accounts.length);
        uint256 n;
        uint256 fees;
        for (uint256 i; i < jobs.length; ++i) {
            uint256 total = totalOf(jobs[i]);
            fees += total - minersTotal(jobs[i]);
            n = addDelta(accounts, deltas, n, jobs[i].buyer, -int256(total));
            for (uint256 j; j < jobs[i].receipts.length; ++j) {
                FogTypes.Receipt memory r = jobs[i].receipts[j].receipt;
                n = addDelta(accounts, deltas, n, r.miner, int256(r.amountCharged));
            }
        }
        if (fees != 0) n = addDelta(accounts, deltas, n, hub, int256(fees));
        // Sort by address (insertion sort: test sizes are small).
        for (uint256 i = 1; i < n; ++i) {
            for (uint256 j = i; j > 0 && accounts[j] < accounts[j - 1]; --j) {
                (accounts[j], accounts[j - 1]) = (accounts[j - 1], accounts[j]);
                (deltas[j], deltas[j - 1]) = (deltas[j - 1], deltas[j]);
            }
        }
        uint256 kept;
        for (uint256 i; i < n; ++i) {
            if (deltas[i] != 0) ++kept;
        }
        entries = new uint256[](kept);
        uint256 k;
        for (uint256 i; i < n; ++i) {
            if (deltas[i] == 0) continue;
            entries[k++] = deltas[i] < 0
                ? entry(accounts[i], true, uint256(-deltas[i]))
                : entry(accounts[i], false, uint256(deltas[i]));
        }
    }

    function addDelta(address[] memory accounts, int256[] memory deltas, uint256 n, address who, int256 d)
        private
        pure
        returns (uint256)
    {
        for (uint256 i; i < n; ++i) {
            if (accounts[i] == who) {
                deltas[i] += d;
                return n;
            }
        }
        accounts[n] = who;
        deltas[n] = d;
        return n + 1;
    }

    /// @dev Commits `jobs` honestly (as the hub's signer) and returns the epoch and its leaves.
    function commit(IBatchSettlement.BatchJob[] memory jobs)
        internal
        returns (IBatchSettlement.EpochRef memory epoch, uint256[] memory entries)
    {
        entries = ledgerOf(jobs);
        return commitWith(jobs, entries);
    }

    function commitWith(IBatchSettlement.BatchJob[] memory jobs, uint256[] memory entries)
        internal
        returns (IBatchSettlement.EpochRef memory epoch, uint256[] memory)
    {
        bytes32[] memory leaves = new bytes32[](jobs.length);
        for (uint256 i; i < jobs.length; ++i) {
            leaves[i] = leafHashOf(leafOf(jobs[i]));
        }
        for (uint256 i; i < jobs.length; ++i) {
            jobs[i].proof = proofOf(leaves, i);
        }
        bytes32 root = rootOf(leaves);
        vm.prank(hubSigner);
        // forge-lint: disable-next-line(unsafe-typecast) test sizes are tiny
        uint32 index = batch.commitEpoch(hub, root, uint32(jobs.length), noFunding(), entries);
        epoch = IBatchSettlement.EpochRef({
            hub: hub,
            index: index,
            root: root,
            ledgerHash: keccak256(abi.encodePacked(entries)),
            // forge-lint: disable-next-line(unsafe-typecast) test time fits
            committedAt: uint40(block.timestamp)
        });
        return (epoch, entries);
    }

    /// @dev `key`'s permit for `amount`, as the hub carries it in a commit.
    function fundingOf(uint256 key, uint256 amount)
        internal
        view
        returns (IBatchSettlement.Funding memory f)
    {
        f.owner = vm.addr(key);
        f.value = amount;
        f.deadline = block.timestamp + 1 hours;
        (f.v, f.r, f.s) = permitSig(key, address(batch), amount, f.deadline);
    }

    function noFunding() internal pure returns (IBatchSettlement.Funding[] memory) {
        return new IBatchSettlement.Funding[](0);
    }

    function positionOf(uint256[] memory entries, address account) internal pure returns (uint256) {
        for (uint256 i; i < entries.length; ++i) {
            if (address(uint160(entries[i] >> 96)) == account) return i;
        }
        revert("no entry for the account");
    }

    function jobsOf(IBatchSettlement.BatchJob memory a)
        internal
        pure
        returns (IBatchSettlement.BatchJob[] memory l)
    {
        l = new IBatchSettlement.BatchJob[](1);
        l[0] = a;
    }

    function jobsOf(IBatchSettlement.BatchJob memory a, IBatchSettlement.BatchJob memory b)
        internal
        pure
        returns (IBatchSettlement.BatchJob[] memory l)
    {
        l = new IBatchSettlement.BatchJob[](2);
        l[0] = a;
        l[1] = b;
    }
}
