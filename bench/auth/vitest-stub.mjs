// See vite-node.config.mjs: test/support imports these; the benchmark never calls them.
const unavailable = () => {
  throw new Error('vitest is not available in a benchmark');
};
export const describe = unavailable;
export const it = unavailable;
