import type { AuditEntry, NamespaceSummary } from '../gen/prism/admin/v1/control_plane_pb.js';
import type { NamespaceRequest, NamespaceResponse } from '../gen/prism/config/v1/namespace_pb.js';
import { html, type Fragment, type Html } from './html.js';
import type { Kpis } from './kpi-board.js';
import { formatNumber, lineChart } from './svg-chart.js';

export const CONSOLE = '/console';

export interface Viewer {
  /** Absent when auth is off. */
  person?: string;
  csrf?: string;
  mayApply: boolean;
}

export interface ProxyRow {
  proxyId: string;
  address: string;
  version: string;
  live: boolean;
  lastHeartbeatMs: number;
  startedAtMs?: number;
  partitions: number;
  namespaces: string[];
  kpis?: Kpis;
  history: number[];
}

type Section = 'namespaces' | 'proxies' | 'apply' | 'none';

// Scripts not deferred: htmx processes the page at once when it runs after parsing, which would be
// before the SSE extension registers; blocking scripts in <head> run in order, before the body.
export function layout(title: string, section: Section, viewer: Viewer | undefined, body: Fragment): Html {
  const link = (href: string, label: string, s: Section) =>
    html`<a href="${CONSOLE}/${href}" ${section === s ? html` aria-current="page"` : ''}>${label}</a>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · Prism console</title>
        <link rel="stylesheet" href="${CONSOLE}/assets/console.css" />
        <script src="${CONSOLE}/assets/htmx.min.js"></script>
        <script src="${CONSOLE}/assets/hx-sse.min.js"></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <span class="brand">Prism console</span>
          <nav aria-label="Console">
            ${link('namespaces', 'Namespaces', 'namespaces')}${link('proxies', 'Proxies', 'proxies')}${viewer?.mayApply ? link('apply', 'Apply', 'apply') : ''}
          </nav>
          ${
            viewer?.person
              ? html`<form class="who" method="post" action="${CONSOLE}/logout">
                  <span>${viewer.person}</span
                  ><input type="hidden" name="csrf" value="${viewer.csrf ?? ''}" /><button type="submit">
                    Log out
                  </button>
                </form>`
              : ''
          }
        </header>
        <main id="main">
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html> `;
}

export function messagePage(title: string, message: Fragment, viewer?: Viewer): Html {
  return layout(title, 'none', viewer, html`<p role="alert">${message}</p>`);
}

const ms = (v: number | undefined) => (v === undefined ? '–' : `${formatNumber(v)} ms`);
const percent = (ratio: number) => `${formatNumber(ratio * 100)} %`;
const time = (atMs: number | bigint) =>
  new Date(Number(atMs))
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');

export function duration(msValue: number): string {
  const s = Math.max(0, Math.floor(msValue / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

// ---- Namespaces ---------------------------------------------------------------------------

export function namespacesPage(query: string, table: Html, viewer: Viewer | undefined): Html {
  const events = `${CONSOLE}/events/namespaces${query ? `?q=${encodeURIComponent(query)}` : ''}`;
  return layout(
    'Namespaces',
    'namespaces',
    viewer,
    html`<form role="search" method="get" action="${CONSOLE}/namespaces" class="search">
        <label for="q">Search by name or team</label>
        <input id="q" name="q" type="search" value="${query}" autocomplete="off" />
        <button type="submit">Search</button>
      </form>
      <div id="namespaces-live" hx-sse:connect="${events}">${table}</div>`,
  );
}

export function namespacesTable(
  rows: readonly NamespaceSummary[],
  query: string,
  kpis: (name: string) => Kpis | undefined,
): Html {
  if (rows.length === 0)
    return html`<p>${query ? `No namespace matches “${query}”.` : 'No namespace is applied yet.'}</p>`;
  return html`<div class="scroll">
    <table id="namespaces">
      <caption>
        ${rows.length} namespace${rows.length === 1 ? '' : 's'}${query ? ` matching “${query}”` : ''}
      </caption>
      <thead>
        <tr>
          <th scope="col">Namespace</th>
          <th scope="col">Team</th>
          <th scope="col">Version</th>
          <th scope="col">Patterns</th>
          <th scope="col">Partition</th>
          <th scope="col">Owner proxy</th>
          <th scope="col">Requests/s</th>
          <th scope="col">Errors</th>
          <th scope="col">p99</th>
          <th scope="col">Updated</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map((ns) => {
          const k = kpis(ns.name);
          return html`<tr data-namespace="${ns.name}">
            <th scope="row"><a href="${CONSOLE}/namespaces/${encodeURIComponent(ns.name)}">${ns.name}</a></th>
            <td>${ns.team}</td>
            <td>${String(ns.version)}</td>
            <td>${ns.patternTypes.join(', ')}</td>
            <td>${ns.partition}</td>
            <td>${ns.ownerProxy || html`<span class="warn">none live</span>`}</td>
            <td data-kpi="rps">${k ? formatNumber(k.requestsPerSecond) : '–'}</td>
            <td data-kpi="errors">${k ? percent(k.errorRatio) : '–'}</td>
            <td data-kpi="p99">${ms(k?.p99Ms)}</td>
            <td>${time(ns.updatedAtMs)}</td>
          </tr>`;
        })}
      </tbody>
    </table>
  </div>`;
}

// ---- One namespace -------------------------------------------------------------------------

export interface NamespaceDetail {
  declaration: NamespaceRequest;
  yaml: string;
  assignment: NamespaceResponse;
  history: AuditEntry[];
  kpiPanel: Html;
}

export function namespacePage(name: string, d: NamespaceDetail, viewer: Viewer | undefined): Html {
  const a = d.assignment;
  return layout(
    `Namespace ${name}`,
    'namespaces',
    viewer,
    html`<p><a href="${CONSOLE}/namespaces">← All namespaces</a></p>
      <section aria-labelledby="kpis-h">
        <h2 id="kpis-h">Traffic</h2>
        <div id="kpis-live" hx-sse:connect="${CONSOLE}/events/namespaces/${encodeURIComponent(name)}">
          ${d.kpiPanel}
        </div>
      </section>
      <section aria-labelledby="assignment-h">
        <h2 id="assignment-h">Assignment</h2>
        <dl class="facts">
          <dt>Team</dt>
          <dd>${d.declaration.team}</dd>
          <dt>Version</dt>
          <dd>${String(a.version)}</dd>
          <dt>Partition</dt>
          <dd>${a.partition}</dd>
          <dt>Owner proxy</dt>
          <dd data-field="owner">${a.ownerProxy || 'none live'}</dd>
          <dt>Updated</dt>
          <dd>${time(a.updatedAtMs)}</dd>
        </dl>
        <div class="scroll">
          <table>
            <caption>
              Slot bindings
            </caption>
            <thead>
              <tr>
                <th scope="col">Pattern</th>
                <th scope="col">Type</th>
                <th scope="col">Version</th>
                <th scope="col">Slot</th>
                <th scope="col">Backend</th>
                <th scope="col">Endpoint</th>
                <th scope="col">Credentials</th>
              </tr>
            </thead>
            <tbody>
              ${a.patterns.flatMap((p) =>
                p.slots.map(
                  (s) =>
                    html`<tr>
                      <th scope="row">${p.name}</th>
                      <td>${p.type}</td>
                      <td>${p.version}</td>
                      <td>${s.slot}</td>
                      <td>${s.backend}</td>
                      <td><code>${s.endpoint}</code></td>
                      <td>${s.credentialRef ? html`<code>${s.credentialRef}</code>` : '–'}</td>
                    </tr>`,
                ),
              )}
            </tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="declaration-h">
        <h2 id="declaration-h">Declaration</h2>
        <pre class="yaml" tabindex="0" aria-label="Declaration of ${name} in canonical YAML">${d.yaml}</pre>
      </section>
      <section aria-labelledby="history-h">
        <h2 id="history-h">History</h2>
        <ol class="history" reversed>
          ${[...d.history].reverse().map(
            (e) =>
              html`<li>
                <details>
                  <summary>
                    <strong>${e.action}</strong> v${String(e.versionBefore)} → v${String(e.versionAfter)} by
                    ${e.principal} at
                    ${time(e.atMs)}${e.source ? html` <span class="muted">from ${e.source}</span>` : ''}
                  </summary>
                  ${diffBlock(e.diff)}
                </details>
              </li>`,
          )}
        </ol>
      </section>`,
  );
}

function diffBlock(diff: string): Html {
  const lines = diff.replace(/\n$/, '').split('\n');
  return html`<pre class="diff" tabindex="0">
${lines.map((line) => {
      const cls =
        line.startsWith('+++') || line.startsWith('---')
          ? 'meta'
          : line.startsWith('+')
            ? 'add'
            : line.startsWith('-')
              ? 'del'
              : line.startsWith('@@')
                ? 'hunk'
                : '';
      return html`<span class="${cls}">${line}</span> `;
    })}</pre>`;
}

export function kpiPanel(k: Kpis | undefined, history: readonly number[], owner: string): Html {
  if (!k)
    return html`<p data-kpi="none">
        No traffic report for this namespace${owner ? ` from ${owner}` : ''} yet: figures appear with the
        owner proxy's next heartbeat.
      </p>
      ${lineChart(history, { label: 'Requests/s', unit: 'req/s' })}`;
  return html`<dl class="kpis" aria-live="polite">
      <div>
        <dt>Requests/s</dt>
        <dd data-kpi="rps">${formatNumber(k.requestsPerSecond)}</dd>
      </div>
      <div>
        <dt>Error ratio</dt>
        <dd data-kpi="errors">${percent(k.errorRatio)}</dd>
      </div>
      <div>
        <dt>p50</dt>
        <dd data-kpi="p50">${ms(k.p50Ms)}</dd>
      </div>
      <div>
        <dt>p99</dt>
        <dd data-kpi="p99">${ms(k.p99Ms)}</dd>
      </div>
      <div>
        <dt>In flight</dt>
        <dd data-kpi="inflight">${k.inFlight}</dd>
      </div>
      ${
        k.subscriptions !== undefined
          ? html`<div>
              <dt>Subscriptions</dt>
              <dd data-kpi="subscriptions">${k.subscriptions}</dd>
            </div>`
          : ''
      }
    </dl>
    ${
      k.errorsByStatus.length > 0
        ? html`<table class="errors">
            <caption>
              Errors by status (last window)
            </caption>
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Share of calls</th>
              </tr>
            </thead>
            <tbody>
              ${k.errorsByStatus.map(
                ([s, r]) =>
                  html`<tr>
                    <th scope="row">${s}</th>
                    <td>${percent(r)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : ''
    }
    ${lineChart(history, { label: 'Requests/s', unit: 'req/s' })}`;
}

// ---- Proxies ------------------------------------------------------------------------------

export function proxiesPage(table: Html, viewer: Viewer | undefined): Html {
  return layout(
    'Proxies',
    'proxies',
    viewer,
    html`<div id="proxies-live" hx-sse:connect="${CONSOLE}/events/proxies">${table}</div>`,
  );
}

export function proxiesTable(rows: readonly ProxyRow[], now: number): Html {
  if (rows.length === 0) return html`<p>No proxy has registered with this admin yet.</p>`;
  return html`<div class="scroll">
      <table id="proxies">
        <caption>
          ${rows.filter((r) => r.live).length} live, ${rows.filter((r) => !r.live).length} lost
        </caption>
        <thead>
          <tr>
            <th scope="col">Proxy</th>
            <th scope="col">State</th>
            <th scope="col">Address</th>
            <th scope="col">Version</th>
            <th scope="col">Uptime</th>
            <th scope="col">Last heartbeat</th>
            <th scope="col">Partitions</th>
            <th scope="col">Namespaces</th>
            <th scope="col">Requests/s</th>
            <th scope="col">Errors</th>
            <th scope="col">p50 / p99</th>
            <th scope="col">In flight</th>
            <th scope="col">Subscriptions</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            (p) =>
              html`<tr data-proxy="${p.proxyId}">
                <th scope="row">${p.proxyId}</th>
                <td data-field="state">
                  <span class="${p.live ? 'ok' : 'warn'}">${p.live ? 'live' : 'lost'}</span>
                </td>
                <td><code>${p.address}</code></td>
                <td>${p.version}</td>
                <td>${p.startedAtMs && p.live ? duration(now - p.startedAtMs) : '–'}</td>
                <td>${duration(now - p.lastHeartbeatMs)} ago</td>
                <td data-field="partitions">${p.partitions}</td>
                <td class="wrap">
                  ${p.namespaces.length > 0 ? p.namespaces.map((n, i) => html`${i > 0 ? ', ' : ''}<a href="${CONSOLE}/namespaces/${encodeURIComponent(n)}">${n}</a>`) : '–'}
                </td>
                <td data-kpi="rps">${p.kpis ? formatNumber(p.kpis.requestsPerSecond) : '–'}</td>
                <td data-kpi="errors">${p.kpis ? percent(p.kpis.errorRatio) : '–'}</td>
                <td>${ms(p.kpis?.p50Ms)} / ${ms(p.kpis?.p99Ms)}</td>
                <td data-kpi="inflight">${p.kpis?.inFlight ?? '–'}</td>
                <td data-kpi="subscriptions">${p.kpis?.subscriptions ?? '–'}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <h2>Requests/s, last 60 s</h2>
    <div class="charts">
      ${rows
        .filter((p) => p.live)
        .map((p) =>
          lineChart(p.history, {
            label: `Requests/s of ${p.proxyId}`,
            unit: 'req/s',
            width: 280,
            height: 56,
          }),
        )}
    </div>`;
}

// ---- Apply --------------------------------------------------------------------------------

export function applyPage(viewer: Viewer, yaml: string, outcome?: { ok: boolean; text: string }): Html {
  return layout(
    'Apply a namespace',
    'apply',
    viewer,
    html`${
        outcome
          ? html`<section aria-labelledby="result-h" class="${outcome.ok ? 'result-ok' : 'result-error'}">
              <h2 id="result-h">${outcome.ok ? 'Applied' : 'Not applied'}</h2>
              <pre id="report" role="${outcome.ok ? 'status' : 'alert'}">${outcome.text}</pre>
            </section>`
          : ''
      }
      <form method="post" action="${CONSOLE}/apply" class="apply">
        <input type="hidden" name="csrf" value="${viewer.csrf ?? ''}" />
        <label for="yaml"
          >Namespace YAML (one namespace, a <code>namespaces:</code> list, or several documents)</label
        >
        <textarea id="yaml" name="yaml" rows="20" spellcheck="false" required>${yaml}</textarea>
        <button type="submit">Validate and apply</button>
      </form>`,
  );
}

export function layoutLink(message: string, href: string): Html {
  return html`${message} <a href="${href}">Log in again</a>.`;
}

export function loggedIn(returnTo: string): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="refresh" content="0;url=${returnTo}" />
        <title>Logged in · Prism console</title>
      </head>
      <body>
        <p>You are logged in. <a href="${returnTo}">Continue</a>.</p>
      </body>
    </html>`;
}
