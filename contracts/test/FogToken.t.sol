// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PRBTest} from "@prb/test/PRBTest.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {FogToken} from "../src/FogToken.sol";

contract FogTokenTest is PRBTest {
    uint256 internal constant SUPPLY = 1_000_000_000e18;
    uint256 internal constant HOLDER_KEY = 0xA11CE;
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    FogToken internal token;
    address internal holder;
    address internal bob = address(0xB0B);

    function setUp() public {
        vm.warp(1_800_000_000);
        holder = vm.addr(HOLDER_KEY);
        token = new FogToken(holder, SUPPLY);
    }

    function test_metadataAndSupply() public {
        assertEq(token.name(), "Fog");
        assertEq(token.symbol(), "FOG");
        assertEq(uint256(token.decimals()), 18);
        assertEq(token.totalSupply(), SUPPLY);
        assertEq(token.balanceOf(holder), SUPPLY);
    }

    function test_clockIsTimestamp() public {
        assertEq(token.CLOCK_MODE(), "mode=timestamp");
        assertEq(uint256(token.clock()), block.timestamp);
        vm.warp(block.timestamp + 1 days);
        assertEq(uint256(token.clock()), block.timestamp);
    }

    function test_transferEmitsAndMoves() public {
        vm.expectEmit(address(token));
        emit IERC20.Transfer(holder, bob, 5e18);
        vm.prank(holder);
        assertTrue(token.transfer(bob, 5e18));
        assertEq(token.balanceOf(bob), 5e18);
        assertEq(token.balanceOf(holder), SUPPLY - 5e18);
    }

    function test_transferMoreThanBalanceReverts() public {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, bob, 0, 1));
        vm.prank(bob);
        // forge-lint: disable-next-line(erc20-unchecked-transfer) it reverts
        token.transfer(holder, 1);
    }

    function _permitDigest(address spender, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, holder, spender, value, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function test_permitSetsAllowanceAndConsumesNonce() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(HOLDER_KEY, _permitDigest(bob, 7e18, 0, deadline));
        token.permit(holder, bob, 7e18, deadline, v, r, s);
        assertEq(token.allowance(holder, bob), 7e18);
        assertEq(token.nonces(holder), 1);

        // The same signature cannot be replayed: the nonce moved on.
        vm.expectRevert();
        token.permit(holder, bob, 7e18, deadline, v, r, s);
    }

    function test_permitExpiredReverts() public {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(HOLDER_KEY, _permitDigest(bob, 1, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        token.permit(holder, bob, 1, deadline, v, r, s);
    }

    function test_permitFromWrongSignerReverts() public {
        uint256 deadline = block.timestamp + 1 hours;
        uint256 otherKey = 0xBAD;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(otherKey, _permitDigest(bob, 1, 0, deadline));
        vm.expectRevert(
            abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, vm.addr(otherKey), holder)
        );
        token.permit(holder, bob, 1, deadline, v, r, s);
    }

    function test_votesFollowDelegationAndTransfers() public {
        vm.prank(holder);
        token.delegate(holder);
        assertEq(token.getVotes(holder), SUPPLY);

        vm.warp(block.timestamp + 10);
        vm.prank(holder);
        assertTrue(token.transfer(bob, 100e18));
        assertEq(token.getVotes(holder), SUPPLY - 100e18);
        // Undelegated tokens carry no votes until their holder delegates.
        assertEq(token.getVotes(bob), 0);
        vm.prank(bob);
        token.delegate(bob);
        assertEq(token.getVotes(bob), 100e18);

        // Past votes are read at a past timestamp.
        vm.warp(block.timestamp + 10);
        assertEq(token.getPastVotes(holder, block.timestamp - 15), SUPPLY);
    }

    function testFuzz_transferConservesSupply(uint256 amount, address to) public {
        vm.assume(to != address(0) && to != holder);
        amount = amount % (SUPPLY + 1);
        vm.prank(holder);
        assertTrue(token.transfer(to, amount));
        assertEq(token.balanceOf(holder) + token.balanceOf(to), SUPPLY);
        assertEq(token.totalSupply(), SUPPLY);
    }
}
