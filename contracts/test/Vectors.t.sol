// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PRBTest} from "@prb/test/PRBTest.sol";
import {FogTypes} from "../src/FogTypes.sol";

/// @dev The fixed vectors of fog-protocol (protocol/tests/eip712.rs `fixed_vectors`), hashed by the
///      contracts' own code: both languages must give the same bytes.
contract VectorsTest is PRBTest {
    function sampleSpec() internal pure returns (FogTypes.JobSpec memory s) {
        s.image = "sha256:abababababababababababababababababababababababababababababababab";
        s.command = new string[](3);
        s.command[0] = "/bin/sh";
        s.command[1] = "-c";
        s.command[2] = "wc -l /fog/in/data.txt > /fog/out/count";
        s.env = new FogTypes.EnvVar[](1);
        s.env[0] = FogTypes.EnvVar("LANG", "C.UTF-8");
        s.inputs = new FogTypes.InputBlob[](1);
        s.inputs[0] = FogTypes.InputBlob(
            bytes32(0x1111111111111111111111111111111111111111111111111111111111111111), 1024, "data.txt"
        );
        s.outputPath = "/fog/out";
        s.resources = FogTypes.Resources(500, 64 << 20, 16 << 20, 0);
        s.maxDurationSecs = 60;
        s.network = 0;
        s.placement.region = "eu-west";
        s.placement.labels = new string[](1);
        s.placement.labels[0] = "arch=amd64";
        s.replicas = 1;
        s.maxPayment = 1e18;
        s.deadline = 1_800_003_600;
    }

    function hashSpec(FogTypes.JobSpec calldata spec) external pure returns (bytes32) {
        return FogTypes.hash(spec);
    }

    function hashReceipt(FogTypes.Receipt calldata receipt) external pure returns (bytes32) {
        return FogTypes.hash(receipt);
    }

    function hashAssignment(FogTypes.Assignment calldata a) external pure returns (bytes32) {
        return FogTypes.hash(a);
    }

    bytes32 internal constant SPEC_HASH = 0xbbab140f9a43f6f669b38370f6c2195f6bbb484f936822f8fb4414318da5aa3c;
    address internal constant MINER = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;
    address internal constant HUB = 0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1;

    function test_specHashMatchesRust() public {
        assertEq(this.hashSpec(sampleSpec()), SPEC_HASH);
    }

    function test_assignmentHashMatchesRust() public {
        FogTypes.Assignment memory a = FogTypes.Assignment(
            bytes32(uint256(0x0101010101010101010101010101010101010101010101010101010101010101)),
            SPEC_HASH,
            HUB,
            MINER,
            5e17
        );
        assertEq(this.hashAssignment(a), 0x25e1b0ec40c5476fa1c214eb419d9edff1ec798ead488bf973c70acdfdc5038e);
    }

    function test_receiptHashMatchesRust() public {
        FogTypes.Receipt memory r = FogTypes.Receipt({
            jobId: bytes32(uint256(0x0101010101010101010101010101010101010101010101010101010101010101)),
            specHash: SPEC_HASH,
            hub: HUB,
            miner: MINER,
            imageId: bytes32(uint256(0xabababababababababababababababababababababababababababababababab)),
            outputHash: bytes32(uint256(0x2222222222222222222222222222222222222222222222222222222222222222)),
            exitCode: 0,
            startedAt: 1_800_000_010,
            endedAt: 1_800_000_012,
            cpuTimeMs: 1234,
            peakMemoryBytes: 3 << 20,
            amountCharged: 123_456_789
        });
        assertEq(this.hashReceipt(r), 0x0d1e2832fcb6cb1c66eafbed7a3e5d26a143a2c468f4874aade5ee3a60f772fc);
    }
}
