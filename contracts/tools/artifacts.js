#!/usr/bin/env node
// Exports the ABI and creation bytecode of the contracts the Rust side binds
// (fog-protocol's `contracts` module reads them with alloy's `sol!`) from
// forge's out/ into the committed artifacts/ directory.
//   node tools/artifacts.js          write artifacts/
//   node tools/artifacts.js --check  fail if artifacts/ differs from a fresh build
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const CONTRACTS = [
  ['FogToken.sol', 'FogToken'],
  ['HubWallet.sol', 'HubWallet'],
  ['HubRegistry.sol', 'HubRegistry'],
  ['JobEscrow.sol', 'JobEscrow'],
  ['BatchSettlement.sol', 'BatchSettlement'],
  ['BatchVerifier.sol', 'BatchVerifier'],
  ['DaoTreasury.sol', 'DaoTreasury'],
  ['FogGovernor.sol', 'FogGovernor'],
  ['TimelockController.sol', 'TimelockController'],
  ['UpgradeableBeacon.sol', 'UpgradeableBeacon'],
  ['ERC1967Proxy.sol', 'ERC1967Proxy'],
];

const check = process.argv.includes('--check');
const outDir = path.join(root, 'artifacts');
if (!check) fs.mkdirSync(outDir, { recursive: true });
const stale = [];
for (const [file, name] of CONTRACTS) {
  // A source built under two compiler profiles (foundry.toml) has one artifact per profile; the
  // default profile's is the deployed one, except for sources pinned to another profile, which
  // have only theirs.
  const plain = path.join(root, 'out', file, `${name}.json`);
  const built = fs.existsSync(plain) ? plain : path.join(root, 'out', file, `${name}.default.json`);
  if (!fs.existsSync(built)) {
    console.error(`missing ${built}: run 'tools/forge build' first`);
    process.exit(1);
  }
  const artifact = JSON.parse(fs.readFileSync(built, 'utf8'));
  const text = JSON.stringify(
    { contractName: name, abi: artifact.abi, bytecode: { object: artifact.bytecode.object } },
    null,
    1,
  ) + '\n';
  const target = path.join(outDir, `${name}.json`);
  if (check) {
    const committed = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    if (committed !== text) stale.push(name);
  } else {
    fs.writeFileSync(target, text);
  }
}
if (stale.length) {
  console.error(`committed contract artifacts differ from a fresh build: ${stale.join(', ')}`);
  console.error("regenerate them with 'make artifacts' and commit contracts/artifacts/");
  process.exit(1);
}
console.log(check ? `artifacts up to date (${CONTRACTS.length} contracts)` : `wrote ${CONTRACTS.length} artifacts to artifacts/`);
