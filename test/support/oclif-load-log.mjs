// Preloaded into a CLI process (NODE_OPTIONS=--import ...): prints "[oclif]" on stderr when the
// process loads oclif's bundle (dist/prismctl.js), so a test can tell the fast start path from
// oclif's.
import { registerHooks } from 'node:module';
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    if (resolved.url.endsWith('/dist/prismctl.js')) process.stderr.write('[oclif]\n');
    return resolved;
  },
});
