import { html, type Html } from './html.js';

export interface ChartOptions {
  width?: number;
  height?: number;
  /** What the line is, for the accessible name. */
  label: string;
  unit: string;
}

/**
 * A line chart of the last samples as inline SVG (no script, no library): a polyline scaled to the
 * largest sample, with that maximum and the latest value printed.
 */
export function lineChart(samples: readonly number[], options: ChartOptions): Html {
  const width = options.width ?? 320;
  const height = options.height ?? 64;
  const max = Math.max(...samples, 0);
  const top = max > 0 ? niceCeiling(max) : 1;
  const step = samples.length > 1 ? width / (samples.length - 1) : width;
  const points = samples
    .map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`)
    .join(' ');
  const latest = samples.at(-1) ?? 0;
  const summary = `${options.label}: ${formatNumber(latest)} ${options.unit} now, at most ${formatNumber(max)} in the last ${samples.length} s`;
  return html`<figure class="chart">
    <svg
      role="img"
      aria-label="${summary}"
      viewBox="0 0 ${width} ${height}"
      width="${width}"
      height="${height}"
      preserveAspectRatio="none"
    >
      <title>${summary}</title>
      <line x1="0" y1="${height - 1}" x2="${width}" y2="${height - 1}" class="axis" />
      ${samples.length > 0 ? html`<polyline points="${points}" class="line" />` : ''}
    </svg>
    <figcaption>
      ${options.label}: <strong>${formatNumber(latest)}</strong> ${options.unit}
      <span class="muted">(scale 0–${formatNumber(top)})</span>
    </figcaption>
  </figure>`;
}

function niceCeiling(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * magnitude) return m * magnitude;
  return 10 * magnitude;
}

export function formatNumber(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return Math.round(v).toString();
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
