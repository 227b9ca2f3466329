// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PRBTest} from "@prb/test/PRBTest.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {UpgradeableBeacon} from "@openzeppelin/contracts/proxy/beacon/UpgradeableBeacon.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {DaoTreasury} from "../../src/DaoTreasury.sol";
import {FogGovernor} from "../../src/FogGovernor.sol";
import {FogToken} from "../../src/FogToken.sol";
import {FogTypes} from "../../src/FogTypes.sol";
import {HubRegistry} from "../../src/HubRegistry.sol";
import {HubWallet} from "../../src/HubWallet.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {IHubRegistry} from "../../src/interfaces/IHubRegistry.sol";
import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";

/// @dev Deploys the whole system as the Rust deployer does (same order, same wiring) and offers signing
///      helpers that compute EIP-712 digests independently of the contracts under test.
abstract contract FogFixture is PRBTest {
    uint256 internal constant SUPPLY = 1_000_000_000e18;
    uint48 internal constant VOTING_DELAY = 1 days;
    uint32 internal constant VOTING_PERIOD = 5 days;
    uint256 internal constant TIMELOCK_DELAY = 2 days;
    uint64 internal constant UNBONDING = 14 days;
    uint64 internal constant FREEZE = 180 days;
    /// @dev Upgrades of fund-holding modules wait longer than the freeze.
    uint256 internal constant FUNDS_DELAY = 181 days;
    uint16 internal constant MAX_EXPOSURE_BPS = 10_000;
    uint256 internal constant PROPOSAL_THRESHOLD = 100_000e18;
    uint64 internal constant MAX_DURATION = 1 hours;
    uint256 internal constant MIN_DEPOSIT = 10_000e18;
    uint16 internal constant MAX_FEE_BPS = 2000;
    uint256 internal constant QUORUM_PERCENT = 4;
    uint256 internal constant T0 = 1_800_000_000;

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    FogToken internal token;
    TimelockController internal timelock;
    TimelockController internal fundsTimelock;
    FogGovernor internal governor;
    UpgradeableBeacon internal walletBeacon;
    HubRegistry internal registry;
    DaoTreasury internal treasury;
    JobEscrow internal escrow;

    // Actors. Keys are test-only.
    uint256 internal constant BUYER_KEY = 0xB1;
    uint256 internal constant OPERATOR_KEY = 0x0F;
    uint256 internal constant HUB_SIGNER_KEY = 0x51;
    uint256 internal constant VOTER_KEY = 0xD0;
    address internal buyer;
    address internal operator;
    address internal hubSigner;
    address internal voter;
    address internal hub;

    function setUp() public virtual {
        vm.warp(T0);
        buyer = vm.addr(BUYER_KEY);
        operator = vm.addr(OPERATOR_KEY);
        hubSigner = vm.addr(HUB_SIGNER_KEY);
        voter = vm.addr(VOTER_KEY);
        deployFog();
        fund(buyer, 1_000_000e18);
        fund(operator, 1_000_000e18);
        fund(voter, 100_000_000e18); // 10% of supply: enough for quorum
        vm.prank(voter);
        token.delegate(voter);
        hub = registerHub(operator, hubSigner, 500, MIN_DEPOSIT);
        vm.warp(block.timestamp + 1);
    }

    function deployFog() internal {
        token = new FogToken(address(this), SUPPLY);
        address[] memory none = new address[](0);
        address[] memory anyone = new address[](1);
        timelock = new TimelockController(TIMELOCK_DELAY, none, anyone, address(this));
        governor =
            new FogGovernor(token, timelock, VOTING_DELAY, VOTING_PERIOD, PROPOSAL_THRESHOLD, QUORUM_PERCENT);
        timelock.grantRole(timelock.PROPOSER_ROLE(), address(governor));
        timelock.grantRole(timelock.CANCELLER_ROLE(), address(governor));
        timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), address(this));
        // Fund-holding modules: a vote schedules the upgrade through the timelock into this one.
        address[] memory proposers = new address[](1);
        proposers[0] = address(timelock);
        fundsTimelock = new TimelockController(FUNDS_DELAY, proposers, anyone, address(0));

        walletBeacon = new UpgradeableBeacon(address(new HubWallet()), address(fundsTimelock));
        treasury = DaoTreasury(
            address(
                new ERC1967Proxy(
                    address(new DaoTreasury()),
                    abi.encodeCall(
                        DaoTreasury.initialize, (token, address(timelock), address(fundsTimelock), FREEZE)
                    )
                )
            )
        );
        registry = HubRegistry(
            address(
                new ERC1967Proxy(
                    address(new HubRegistry()), abi.encodeCall(HubRegistry.initialize, (registryConfig()))
                )
            )
        );
        treasury.bindRegistry(address(registry));
        escrow = JobEscrow(
            address(
                new ERC1967Proxy(
                    address(new JobEscrow()),
                    abi.encodeCall(
                        JobEscrow.initialize, (token, IHubRegistry(address(registry)), address(fundsTimelock))
                    )
                )
            )
        );
        registry.bindEscrow(address(escrow));
    }

    function registryConfig() internal view returns (IHubRegistry.Config memory) {
        return IHubRegistry.Config({
            token: token,
            walletBeacon: address(walletBeacon),
            timelock: timelock,
            fundsTimelock: fundsTimelock,
            governor: IGovernor(address(governor)),
            treasury: address(treasury),
            minDeposit: MIN_DEPOSIT,
            unbondingPeriod: UNBONDING,
            maxFeeBps: MAX_FEE_BPS,
            maxExposureBps: MAX_EXPOSURE_BPS
        });
    }

    function fund(address who, uint256 amount) internal {
        assertTrue(token.transfer(who, amount));
    }

    function registerHub(address op, address signer, uint16 feeBps, uint256 deposit)
        internal
        returns (address)
    {
        vm.startPrank(op);
        token.approve(address(registry), deposit);
        address h = registry.register(signer, feeBps, "https://hub.example:8443", deposit);
        vm.stopPrank();
        return h;
    }

    // ------------------------------------------------------------------ jobs

    function openJob(bytes32 salt, uint16 replicas, uint256 maxPayment) internal returns (bytes32 jobId) {
        vm.startPrank(buyer);
        token.approve(address(escrow), maxPayment);
        jobId = escrow.open(
            salt, hub, specHashOf(salt), uint64(block.timestamp + 1 days), replicas, maxPayment, MAX_DURATION
        );
        vm.stopPrank();
    }

    function specHashOf(bytes32 salt) internal pure returns (bytes32) {
        return keccak256(abi.encode("spec", salt));
    }

    function minerKey(uint256 i) internal pure returns (uint256) {
        return 0x1000 + i;
    }

    function receiptFor(bytes32 jobId, uint256 minerIndex, uint256 charged, bytes32 outputHash)
        internal
        view
        returns (FogTypes.Receipt memory r)
    {
        IJobEscrow.Job memory job = escrow.getJob(jobId);
        r.jobId = jobId;
        r.specHash = job.specHash;
        r.hub = job.hub;
        r.miner = vm.addr(minerKey(minerIndex));
        r.imageId = keccak256("image");
        r.outputHash = outputHash;
        r.exitCode = 0;
        r.startedAt = uint64(block.timestamp - 100);
        r.endedAt = uint64(block.timestamp - 10);
        r.cpuTimeMs = 90_000;
        r.peakMemoryBytes = 64 << 20;
        r.amountCharged = charged;
    }

    // ---------------------------------------------------------- EIP-712, by hand

    function domainSeparator(uint256 chainId, address verifyingContract) internal pure returns (bytes32) {
        return
            keccak256(
                abi.encode(DOMAIN_TYPEHASH, keccak256("Fog"), keccak256("1"), chainId, verifyingContract)
            );
    }

    function digest(bytes32 separator, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", separator, structHash));
    }

    function receiptStructHash(FogTypes.Receipt memory r) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256(
                    "Receipt(bytes32 jobId,bytes32 specHash,address hub,address miner,bytes32 imageId,bytes32 outputHash,int32 exitCode,uint64 startedAt,uint64 endedAt,uint64 cpuTimeMs,uint64 peakMemoryBytes,uint256 amountCharged)"
                ),
                r
            )
        );
    }

    function assignmentStructHash(FogTypes.Receipt memory r, uint256 maxCharge)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                keccak256(
                    "Assignment(bytes32 jobId,bytes32 specHash,address hub,address miner,uint256 maxCharge)"
                ),
                r.jobId,
                r.specHash,
                r.hub,
                r.miner,
                maxCharge
            )
        );
    }

    function sig(uint256 key, bytes32 hash) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, hash);
        return abi.encodePacked(r, s, v);
    }

    /// @dev A receipt signed by its miner and assigned by the hub's signer, under this chain and escrow.
    function signed(FogTypes.Receipt memory r, uint256 minerIndex, uint256 maxCharge)
        internal
        view
        returns (IJobEscrow.SignedReceipt memory s)
    {
        return signedUnder(
            r,
            minerKey(minerIndex),
            HUB_SIGNER_KEY,
            maxCharge,
            domainSeparator(block.chainid, address(escrow))
        );
    }

    function signedUnder(
        FogTypes.Receipt memory r,
        uint256 minerSigningKey,
        uint256 hubSigningKey,
        uint256 maxCharge,
        bytes32 separator
    ) internal pure returns (IJobEscrow.SignedReceipt memory s) {
        s.receipt = r;
        s.maxCharge = maxCharge;
        s.assignmentSignature = sig(hubSigningKey, digest(separator, assignmentStructHash(r, maxCharge)));
        s.receiptSignature = sig(minerSigningKey, digest(separator, receiptStructHash(r)));
    }

    /// @dev `k` agreeing receipts from miners 0..k-1, each charging `charged`.
    function quorum(bytes32 jobId, uint256 k, uint256 charged)
        internal
        view
        returns (IJobEscrow.SignedReceipt[] memory list)
    {
        list = new IJobEscrow.SignedReceipt[](k);
        for (uint256 i; i < k; ++i) {
            list[i] = signed(receiptFor(jobId, i, charged, keccak256("output")), i, charged);
        }
    }

    function permitSig(uint256 ownerKey, address spender, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        address owner = vm.addr(ownerKey);
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, token.nonces(owner), deadline));
        return vm.sign(ownerKey, digest(token.DOMAIN_SEPARATOR(), structHash));
    }

    // ------------------------------------------------------------------ DAO

    /// @dev Runs one proposal through a real vote: propose, vote for, queue, wait, execute.
    function passProposal(address target, bytes memory data, string memory description) internal {
        queueProposal(target, data, description);
        executeProposal(target, data, description);
    }

    /// @dev Proposes, votes for, queues, and waits out the timelock; `executeProposal` finishes.
    function queueProposal(address target, bytes memory data, string memory description) internal {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = single(target, data);
        vm.prank(voter);
        uint256 id = governor.propose(targets, values, calldatas, description);
        vm.warp(block.timestamp + VOTING_DELAY + 1);
        vm.prank(voter);
        governor.castVote(id, 1);
        vm.warp(block.timestamp + VOTING_PERIOD + 1);
        governor.queue(targets, values, calldatas, keccak256(bytes(description)));
        vm.warp(block.timestamp + TIMELOCK_DELAY + 1);
    }

    function executeProposal(address target, bytes memory data, string memory description) internal {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = single(target, data);
        governor.execute(targets, values, calldatas, keccak256(bytes(description)));
    }

    /// @dev A call through the funds timelock: a DAO vote schedules it there, then its long delay runs.
    function passFundsProposal(address target, bytes memory data, string memory description) internal {
        bytes memory schedule = abi.encodeCall(
            TimelockController.schedule, (target, 0, data, bytes32(0), bytes32(0), FUNDS_DELAY)
        );
        passProposal(address(fundsTimelock), schedule, description);
        vm.warp(block.timestamp + FUNDS_DELAY + 1);
        fundsTimelock.execute(target, 0, data, bytes32(0), bytes32(0));
    }

    function single(address target, bytes memory data)
        internal
        pure
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas)
    {
        targets = new address[](1);
        targets[0] = target;
        values = new uint256[](1);
        calldatas = new bytes[](1);
        calldatas[0] = data;
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (max <= min) return min;
        return min + x % (max - min + 1);
    }
}
