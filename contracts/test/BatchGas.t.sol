// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IBatchSettlement} from "../src/interfaces/IBatchSettlement.sol";
import {BatchFixture} from "./utils/BatchFixture.sol";
import {GasSnapshots} from "./utils/GasSnapshots.sol";

/// @dev Execution gas of the batched path, written to snapshots/BatchGasTest.json and compared in
///      `make test`. Whole-transaction figures (intrinsic gas and calldata included) for the 1,000-job
///      scenario come from a live anvil: `make gas-table`, docs/gas.md.
contract BatchGasTest is BatchFixture {
    GasSnapshots internal constant GAS =
        GasSnapshots(address(uint160(uint256(keccak256("hevm cheat code")))));

    function test_gas_deposit() public {
        uint256 key = 0xF00;
        address who = vm.addr(key);
        fund(who, 200e18);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = permitSig(key, address(batch), 100e18, deadline);
        vm.prank(who);
        GAS.startSnapshotGas("depositWithPermit (new account)");
        batch.depositWithPermit(100e18, deadline, v, r, s);
        GAS.stopSnapshotGas();
        (v, r, s) = permitSig(key, address(batch), 100e18, deadline);
        vm.prank(who);
        GAS.startSnapshotGas("depositWithPermit (top-up)");
        batch.depositWithPermit(100e18, deadline, v, r, s);
        GAS.stopSnapshotGas();
    }

    /// @dev The 1,000-job epoch: 20 buyers debited, 50 miners and the hub credited (71 entries).
    function test_gas_commitEpoch_1000_jobs() public {
        address[] memory accounts = new address[](71);
        for (uint256 i; i < 20; ++i) {
            accounts[i] = address(uint160(0xB000 + i));
            fund(address(this), 0);
        }
        for (uint256 i; i < 50; ++i) {
            accounts[20 + i] = address(uint160(0xA000 + i));
        }
        accounts[70] = hub;
        // Buyers hold funds; sort accounts.
        for (uint256 i = 1; i < 71; ++i) {
            for (uint256 j = i; j > 0 && accounts[j] < accounts[j - 1]; --j) {
                (accounts[j], accounts[j - 1]) = (accounts[j - 1], accounts[j]);
            }
        }
        token.approve(address(batch), 20 * 1000e18);
        for (uint256 i; i < 20; ++i) {
            batch.deposit(address(uint160(0xB000 + i)), 1000e18);
        }
        // Each buyer pays 50 jobs of 1 FOG plus 5%; each miner earns 20 FOG; the hub 50 FOG.
        uint256[] memory entries = new uint256[](71);
        for (uint256 i; i < 71; ++i) {
            address a = accounts[i];
            uint160 n = uint160(a);
            if (n >= 0xB000 && n < 0xB000 + 20) entries[i] = entry(a, true, 52.5e18);
            else if (n >= 0xA000 && n < 0xA000 + 50) entries[i] = entry(a, false, 20e18);
            else entries[i] = entry(a, false, 50e18);
        }
        vm.prank(hubSigner);
        GAS.startSnapshotGas("commitEpoch 1000 jobs, 20 buyers, 50 new miners");
        batch.commitEpoch(hub, keccak256("root"), 1000, noFunding(), entries);
        GAS.stopSnapshotGas();
        vm.warp(block.timestamp + CHALLENGE_WINDOW + RESPONSE_WINDOW);
        vm.prank(hubSigner);
        GAS.startSnapshotGas("commitEpoch 1000 jobs, 20 buyers, 50 known miners");
        batch.commitEpoch(hub, keccak256("root2"), 1000, noFunding(), entries);
        GAS.stopSnapshotGas();
    }

    /// @dev The 1,000-job epoch with 20 new buyers funded inside it by the permits the hub carries.
    function test_gas_commitEpoch_1000_jobs_funding_20_new_buyers() public {
        address[] memory accounts = new address[](71);
        IBatchSettlement.Funding[] memory fundings = new IBatchSettlement.Funding[](20);
        for (uint256 i; i < 20; ++i) {
            accounts[i] = vm.addr(0xC000 + i);
            fund(accounts[i], 100e18);
            fundings[i] = fundingOf(0xC000 + i, 100e18);
        }
        for (uint256 i; i < 50; ++i) {
            accounts[20 + i] = address(uint160(0xA000 + i));
        }
        accounts[70] = hub;
        for (uint256 i = 1; i < 71; ++i) {
            for (uint256 j = i; j > 0 && accounts[j] < accounts[j - 1]; --j) {
                (accounts[j], accounts[j - 1]) = (accounts[j - 1], accounts[j]);
            }
        }
        uint256[] memory entries = new uint256[](71);
        for (uint256 i; i < 71; ++i) {
            address a = accounts[i];
            uint160 n = uint160(a);
            if (a == hub) entries[i] = entry(a, false, 50e18);
            else if (n >= 0xA000 && n < 0xA000 + 50) entries[i] = entry(a, false, 20e18);
            else entries[i] = entry(a, true, 52.5e18);
        }
        vm.prank(hubSigner);
        GAS.startSnapshotGas("commitEpoch 1000 jobs, 20 new buyers funded in it, 50 new miners");
        batch.commitEpoch(hub, keccak256("root"), 1000, fundings, entries);
        GAS.stopSnapshotGas();
    }

    function test_gas_dispute_and_claim() public {
        fundAccount(0xC1, 1000e18);
        IBatchSettlement.BatchJob memory job = makeJob(BUYER_KEY, bytes32("a"), 0, one(10e18), 20e18);
        IBatchSettlement.BatchJob memory other = makeJob(BUYER_KEY, bytes32("b"), 1, one(4e18), 20e18);
        IBatchSettlement.BatchJob[] memory jobs = jobsOf(job, other);
        (IBatchSettlement.EpochRef memory epoch, uint256[] memory entries) = commit(jobs);
        vm.prank(vm.addr(0xC1));
        GAS.startSnapshotGas("challenge");
        batch.challenge(epoch, entries, positionOf(entries, vm.addr(minerKey(0))));
        GAS.stopSnapshotGas();
        GAS.startSnapshotGas("answer (1 job, k=1)");
        batch.answer(epoch, vm.addr(minerKey(0)), abi.encode(jobsOf(jobs[0])));
        GAS.stopSnapshotGas();

        IBatchSettlement.BatchJob memory withheld = makeJob(BUYER_KEY, bytes32("w"), 2, one(3e18), 20e18);
        vm.warp(withheld.auth.deadline + 1);
        GAS.startSnapshotGas("forceClaim k=1");
        bytes32 jobId = batch.forceClaim(abi.encode(withheld));
        GAS.stopSnapshotGas();
        vm.warp(block.timestamp + PROOF_WINDOW);
        address[] memory miners = new address[](1);
        miners[0] = vm.addr(minerKey(2));
        uint256[] memory amounts = one(3e18);
        GAS.startSnapshotGas("payClaim k=1");
        batch.payClaim(jobId, miners, amounts);
        GAS.stopSnapshotGas();
    }
}
