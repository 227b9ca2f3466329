// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {UpgradeableBeacon} from "@openzeppelin/contracts/proxy/beacon/UpgradeableBeacon.sol";
import {ERC1967Utils} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Utils.sol";
import {HubWallet} from "../src/HubWallet.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {FogFixture} from "./utils/FogFixture.sol";

/// @dev A second version of the escrow: one new function and one new storage field, in its own
///      ERC-7201 namespace so the v1 layout is untouched.
contract JobEscrowV2 is JobEscrow {
    /// @custom:storage-location erc7201:fog.storage.JobEscrowV2
    struct V2Storage {
        string releaseNote;
    }

    // keccak256(abi.encode(uint256(keccak256("fog.storage.JobEscrowV2")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant V2_SLOT = 0x07e719036f09dab6e770fdeb0c31f5e14e1b884738df297f4a9e72bc85d8d300;

    function initializeV2(string calldata note) external reinitializer(2) {
        _v2().releaseNote = note;
    }

    function releaseNote() external view returns (string memory) {
        return _v2().releaseNote;
    }

    function version() external pure returns (uint256) {
        return 2;
    }

    function _v2() private pure returns (V2Storage storage $) {
        assembly {
            $.slot := V2_SLOT
        }
    }
}

contract HubWalletV2 is HubWallet {
    function version() external pure returns (uint256) {
        return 2;
    }
}

contract UpgradeTest is FogFixture {
    function test_escrowUpgradeThroughGovernanceKeepsOldJobs() public {
        bytes32 toSettle = openJob(keccak256("a"), 2, 50e18);
        bytes32 toRefund = openJob(keccak256("b"), 1, 30e18);
        IJobEscrow.SignedReceipt[] memory receipts = quorum(toSettle, 2, 5e18);
        uint256 escrowBalance = token.balanceOf(address(escrow));

        // Jobs must outlive the vote and the funds timelock's delay: long deadlines.
        vm.startPrank(buyer);
        token.approve(address(escrow), 80e18);
        bytes32 longSettle = escrow.open(
            keccak256("c"),
            hub,
            specHashOf(keccak256("c")),
            uint64(block.timestamp + 300 days),
            2,
            50e18,
            MAX_DURATION
        );
        bytes32 longRefund = escrow.open(
            keccak256("d"),
            hub,
            specHashOf(keccak256("d")),
            uint64(block.timestamp + 200 days),
            1,
            30e18,
            MAX_DURATION
        );
        vm.stopPrank();

        address v2 = address(new JobEscrowV2());
        passFundsProposal(
            address(escrow),
            abi.encodeCall(
                escrow.upgradeToAndCall, (v2, abi.encodeCall(JobEscrowV2.initializeV2, ("v2: notes")))
            ),
            "Upgrade JobEscrow to v2"
        );

        JobEscrowV2 upgraded = JobEscrowV2(address(escrow));
        assertEq(upgraded.version(), 2);
        assertEq(upgraded.releaseNote(), "v2: notes");
        assertEq(address(uint160(uint256(vm.load(address(escrow), ERC1967Utils.IMPLEMENTATION_SLOT)))), v2);
        // Old state intact.
        assertEq(token.balanceOf(address(escrow)), escrowBalance + 80e18);
        assertEq(escrow.getJob(toSettle).buyer, buyer);
        assertEq(escrow.domainSeparator(), domainSeparator(block.chainid, address(escrow)));

        // A job opened under v1 settles under v2 with receipts signed against the same domain.
        IJobEscrow.SignedReceipt[] memory fresh = quorum(longSettle, 2, 5e18);
        escrow.settle(longSettle, fresh);
        assertEq(token.balanceOf(fresh[0].receipt.miner), 5e18);
        // Another refunds under v2.
        vm.warp(block.timestamp + 20 days);
        uint256 before = token.balanceOf(buyer);
        vm.prank(buyer);
        escrow.refund(longRefund);
        assertEq(token.balanceOf(buyer), before + 30e18);
        // The short ones expired during the vote; their buyer refunds them.
        vm.startPrank(buyer);
        escrow.refund(toSettle);
        escrow.refund(toRefund);
        vm.stopPrank();
        assertEq(receipts.length, 2);
        assertEq(token.balanceOf(address(escrow)), 0);

        // v2 cannot be initialised twice.
        vm.expectRevert();
        upgraded.initializeV2("again");
    }

    function test_walletsUpgradeTogetherThroughTheBeacon() public {
        fund(address(0x0B3), MIN_DEPOSIT);
        address second = registerHub(address(0x0B3), address(0x5164), 0, MIN_DEPOSIT);
        address v2 = address(new HubWalletV2());
        passFundsProposal(
            address(walletBeacon), abi.encodeCall(UpgradeableBeacon.upgradeTo, (v2)), "Upgrade wallets"
        );
        assertEq(walletBeacon.implementation(), v2);
        assertEq(HubWalletV2(hub).version(), 2);
        assertEq(HubWalletV2(second).version(), 2);
        assertEq(HubWallet(hub).deposit(), MIN_DEPOSIT);
        assertEq(HubWallet(second).deposit(), MIN_DEPOSIT);
    }

    function test_oneModuleUpgradesWithoutHaltingOthers() public {
        address v2 = address(new JobEscrowV2());
        passFundsProposal(
            address(escrow),
            abi.encodeCall(escrow.upgradeToAndCall, (v2, abi.encodeCall(JobEscrowV2.initializeV2, ("x")))),
            "upgrade"
        );
        // The registry and a fresh job keep working across the escrow's upgrade.
        fund(address(0x0B4), MIN_DEPOSIT);
        address third = registerHub(address(0x0B4), address(0x5165), 100, MIN_DEPOSIT);
        assertTrue(third != address(0));
        bytes32 jobId = openJob(keccak256("after"), 1, 10e18);
        escrow.settle(jobId, quorum(jobId, 1, 1e18));
    }
}
