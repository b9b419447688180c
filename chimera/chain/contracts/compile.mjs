// One-off, build-time compile of TestUSDC.sol with solc-js (npm "solc" bundles its compiler, so no download).
// Run from this directory after `npm install --no-save solc@0.8.37 @openzeppelin/contracts@5.7.0` here;
// it writes ../artifacts/TestUSDC.json, which is what Chimera deploys at run time (see README.md).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const here = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(here, 'package.json'));
const solc = require('solc');
const NM = path.join(here, 'node_modules');
const src = fs.readFileSync(path.join(here, 'TestUSDC.sol'), 'utf8');
const input = {
  language: 'Solidity',
  sources: { 'TestUSDC.sol': { content: src } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const findImports = (p) => {
  try { return { contents: fs.readFileSync(path.join(NM, p), 'utf8') }; } catch (e) { return { error: 'not found ' + p }; }
};
const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
for (const e of out.errors || []) console.error(e.severity, e.formattedMessage);
const c = out.contracts['TestUSDC.sol']['TestUSDC'];
const art = {
  contractName: 'TestUSDC', compiler: solc.version(), evmVersion: 'cancun', openzeppelin: '5.7.0',
  abi: c.abi, bytecode: '0x' + c.evm.bytecode.object, deployedBytecode: '0x' + c.evm.deployedBytecode.object,
};
fs.writeFileSync(path.join(here, '..', 'artifacts', 'TestUSDC.json'), JSON.stringify(art, null, 1));
console.log('ok', solc.version(), 'bytecode bytes', c.evm.bytecode.object.length / 2, 'abi entries', c.abi.length);
