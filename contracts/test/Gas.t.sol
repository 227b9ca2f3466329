// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {HubRegistry} from "../src/HubRegistry.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {FogFixture} from "./utils/FogFixture.sol";
import {GasSnapshots} from "./utils/GasSnapshots.sol";

/// @dev Execution gas of each operation, written to snapshots/GasTest.json and compared in `make test`
///      (FORGE_SNAPSHOT_CHECK=true). Excludes the 21,000 intrinsic gas and calldata; docs/gas.md has
///      whole-transaction figures from a live anvil.
contract GasTest is FogFixture {
    GasSnapshots internal constant GAS =
        GasSnapshots(address(uint160(uint256(keccak256("hevm cheat code")))));

    function _open(string memory label, uint8 k) internal returns (bytes32 jobId) {
        vm.startPrank(buyer);
        token.approve(address(escrow), 100e18);
        GAS.startSnapshotGas(label);
        jobId = escrow.open(
            bytes32(uint256(k)),
            hub,
            specHashOf(bytes32(uint256(k))),
            uint64(block.timestamp + 1 days),
            k,
            100e18,
            MAX_DURATION
        );
        GAS.stopSnapshotGas();
        vm.stopPrank();
    }

    function test_gas_openAndSettle() public {
        for (uint8 k = 1; k <= 3; k += 2) {
            string memory suffix = k == 1 ? " k=1" : " k=3";
            bytes32 jobId = _open(string.concat("open", suffix), k);
            IJobEscrow.SignedReceipt[] memory list = quorum(jobId, k, 10e18);
            GAS.startSnapshotGas(string.concat("settle", suffix));
            escrow.settle(jobId, list);
            GAS.stopSnapshotGas();
        }
    }

    function test_gas_openWithPermitAndRefund() public {
        for (uint8 k = 1; k <= 3; k += 2) {
            string memory suffix = k == 1 ? " k=1" : " k=3";
            uint256 permitDeadline = block.timestamp + 1 hours;
            (uint8 v, bytes32 r, bytes32 s) = permitSig(BUYER_KEY, address(escrow), 100e18, permitDeadline);
            vm.prank(buyer);
            GAS.startSnapshotGas(string.concat("openWithPermit", suffix));
            bytes32 jobId = escrow.openWithPermit(
                bytes32(uint256(k) + 100),
                hub,
                bytes32(0),
                uint64(block.timestamp + 1 days),
                k,
                100e18,
                MAX_DURATION,
                permitDeadline,
                v,
                r,
                s
            );
            GAS.stopSnapshotGas();
            vm.warp(block.timestamp + 1 days + 1);
            vm.prank(buyer);
            GAS.startSnapshotGas(string.concat("refund", suffix));
            escrow.refund(jobId);
            GAS.stopSnapshotGas();
        }
    }

    function test_gas_registerAndBlacklist() public {
        address op = address(0x0BB);
        fund(op, MIN_DEPOSIT);
        vm.startPrank(op);
        token.approve(address(registry), MIN_DEPOSIT);
        GAS.startSnapshotGas("register");
        address h = registry.register(hubSigner, 500, "https://hub.example:8443", MIN_DEPOSIT);
        GAS.stopSnapshotGas();
        vm.stopPrank();
        vm.prank(address(timelock));
        GAS.startSnapshotGas("blacklist (timelock call)");
        registry.blacklist(h, bytes32(0));
        GAS.stopSnapshotGas();
    }
}
