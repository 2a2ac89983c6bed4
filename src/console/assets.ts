import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

/** htmx and its SSE extension, vendored from the htmx.org npm package (no CDN). */
const VENDORED: Readonly<Record<string, string>> = {
  'htmx.min.js': 'htmx.org/dist/htmx.min.js',
  'hx-sse.min.js': 'htmx.org/dist/ext/hx-sse.min.js',
};

const cache = new Map<string, Promise<Buffer>>();

/** The asset's bytes and type, or undefined for an unknown name. */
export function asset(name: string): { body: Promise<Buffer | string>; type: string } | undefined {
  if (name === 'console.css') return { body: Promise.resolve(CSS), type: 'text/css; charset=utf-8' };
  const specifier = VENDORED[name];
  if (!specifier) return undefined;
  let body = cache.get(name);
  if (!body) {
    body = readFile(createRequire(import.meta.url).resolve(specifier));
    cache.set(name, body);
  }
  return { body, type: 'text/javascript; charset=utf-8' };
}

// Contrast: text #1a1a1a on #fff (17:1), links #0b4f9c (8.6:1), muted #4a4a4a (8.9:1).
const CSS = `
:root { color-scheme: light; font-family: system-ui, sans-serif; color: #1a1a1a; background: #fff; }
body { margin: 0; line-height: 1.45; }
a { color: #0b4f9c; }
:focus-visible { outline: 3px solid #b35900; outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px; }
header { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: center; padding: 10px 20px; border-bottom: 2px solid #1a1a1a; }
.brand { font-weight: 700; }
nav { display: flex; flex-wrap: wrap; gap: 16px; }
nav a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
.who { margin-left: auto; display: flex; gap: 8px; align-items: center; }
main { padding: 8px 20px 40px; max-width: 1400px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 28px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; min-width: 100%; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #c8c8c8; white-space: nowrap; vertical-align: middle; }
thead th { border-bottom: 2px solid #1a1a1a; white-space: normal; vertical-align: bottom; }
td[data-kpi] { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: #4a4a4a; } .ok { color: #0a5d1f; font-weight: 600; } .warn { color: #9c1c00; font-weight: 600; }
.search { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 12px; }
input, textarea, button { font: inherit; } input[type=search] { padding: 4px 6px; min-width: 16rem; }
button { padding: 4px 12px; border: 1px solid #1a1a1a; background: #f2f2f2; border-radius: 3px; cursor: pointer; }
pre { background: #f6f6f6; border: 1px solid #c8c8c8; padding: 10px; overflow-x: auto; }
.diff .add { color: #0a5d1f; } .diff .del { color: #9c1c00; } .diff .hunk, .diff .meta { color: #4a4a4a; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; } .facts dt { font-weight: 600; } .facts dd { margin: 0; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 0 0 8px; }
.kpis div { border: 1px solid #c8c8c8; padding: 6px 12px; min-width: 7rem; } .kpis dt { font-size: .85rem; color: #4a4a4a; } .kpis dd { margin: 0; font-size: 1.3rem; font-variant-numeric: tabular-nums; }
.chart { margin: 6px 0; } .chart svg { display: block; max-width: 100%; background: #fafafa; border: 1px solid #c8c8c8; }
.chart .line { fill: none; stroke: #0b4f9c; stroke-width: 2; vector-effect: non-scaling-stroke; } .chart .axis { stroke: #4a4a4a; }
td.wrap { white-space: normal; min-width: 10rem; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.apply { display: grid; gap: 8px; max-width: 60rem; } textarea { font-family: ui-monospace, monospace; width: 100%; }
.result-ok pre { border-color: #0a5d1f; } .result-error pre { border-color: #9c1c00; }
.history details { margin: 4px 0; }
`;
