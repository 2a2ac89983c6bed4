import { describe, expect, it } from 'vitest';
import { html, raw } from '../../../src/console/html.js';
import { lineChart } from '../../../src/console/svg-chart.js';
import { applyPage, duration } from '../../../src/console/pages.js';

describe('console markup', () => {
  it('escapes every interpolated value unless it is markup already', () => {
    const text = '<script>alert("x")</script> & \'quotes\'';
    expect(html`<p title="${text}">${text}</p>`.text).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;</p>',
    );
    expect(html`<div>${raw('<b>ok</b>')}${[1, ' < ', 2]}${undefined}${false}</div>`.text).toBe(
      '<div><b>ok</b>1 &lt; 2</div>',
    );
  });

  it('puts pasted YAML and the report back into the apply page escaped', () => {
    const page = applyPage({ person: 'a@b', csrf: 't"k', mayApply: true }, 'description: </textarea><b>', {
      ok: false,
      text: '<pasted>:1:1: error X',
    }).text;
    expect(page).toContain('description: &lt;/textarea&gt;&lt;b&gt;</textarea>');
    expect(page).toContain('&lt;pasted&gt;:1:1: error X</pre>');
    expect(page).toContain('name="csrf" value="t&quot;k"');
  });

  it('draws a chart scaled to a round maximum, with an accessible summary', () => {
    const svg = lineChart([0, 5, 10], { label: 'Requests/s', unit: 'req/s', width: 100, height: 24 }).text;
    expect(svg).toContain('<polyline points="0.0,22.0 50.0,12.0 100.0,2.0" class="line" />');
    expect(svg).toContain('aria-label="Requests/s: 10.0 req/s now, at most 10.0 in the last 3 s"');
    expect(svg).toContain('(scale 0–10.0)');
    expect(lineChart([], { label: 'x', unit: 'u' }).text).not.toContain('<polyline');
  });

  it('prints durations as people read them', () => {
    expect([0, 59_999, 61_000, 3_723_000, 90_061_000].map(duration)).toEqual([
      '0s',
      '59s',
      '1m 1s',
      '1h 2m',
      '1d 1h',
    ]);
  });
});
