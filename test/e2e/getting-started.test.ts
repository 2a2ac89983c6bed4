/**
 * docs/getting-started.md replayed with this checkout's prismctl: a `prismctl` shim on PATH
 * running `node <repo>/bin/run.js` (test/support/getting-started-replay.ts says how).
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, REPO_ROOT } from '../support/cli.js';
import { describeGettingStartedReplay } from '../support/getting-started-replay.js';

describeGettingStartedReplay('docs/getting-started.md, replayed command by command', async (bin) => {
  await ensureBuilt();
  writeFileSync(
    join(bin, 'prismctl'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO_ROOT, 'bin/run.js'))} "$@"\n`,
  );
  chmodSync(join(bin, 'prismctl'), 0o755);
});
