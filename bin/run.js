#!/usr/bin/env node
// Refuse an unsupported Node.js in one sentence, before loading anything that would fail obscurely
// on it (better-sqlite3 13 needs Node 22; 12, the last for Node 20, crashes on Node 24).
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  process.stderr.write(
    `prismctl needs Node.js 22 or later; this is ${process.version}. ` +
      'Install a current LTS (24) from https://nodejs.org or your package manager, then run prismctl again.\n',
  );
  process.exit(1);
}

// Cache compiled code between runs (Node >= 22.1; NODE_DISABLE_COMPILE_CACHE=1 turns it off).
const { default: module } = await import('node:module');
module.enableCompileCache?.();

const { existsSync, readFileSync } = await import('node:fs');
const root = `${import.meta.dirname}/..`;
const argv = process.argv.slice(2);

if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  // What oclif prints for --version (its config.userAgent), without loading oclif.
  const { arch, platform, release } = await import('node:os');
  const { name, version } = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
  const os = platform() === 'linux' && /microsoft/i.test(release()) ? 'wsl' : platform();
  process.stdout.write(
    `${name}/${version} ${os}-${arch() === 'ia32' ? 'x86' : arch()} node-${process.version}\n`,
  );
} else if (argv[0] === 'complete' && argv[1] === '--' && existsSync(`${root}/oclif.manifest.json`)) {
  // What the shells' completion scripts run on every TAB: answered from the manifest, without oclif.
  const { completeMain } = await import('../dist/complete.js');
  await completeMain(root, argv.slice(2));
} else {
  // Most command lines run without oclif (src/cli/lite/run.ts); the rest, and every usage error,
  // go to oclif. PRISMCTL_FAST_START=0 sends everything to oclif.
  const fast =
    process.env.PRISMCTL_FAST_START !== '0' &&
    existsSync(`${root}/dist/fast/main.js`) &&
    (await import('../dist/fast/main.js')).fastMain;
  if (!fast || !(await fast(root, argv))) {
    const { main } = await import('../dist/prismctl.js');
    await main(import.meta.url);
  }
}
