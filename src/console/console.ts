import { create } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Authenticate } from '../admin/server.js';
import { InvalidNamespaceError, type ControlPlane } from '../admin/control-plane.js';
import { ownerOf, PARTITION_COUNT } from '../admin/partition.js';
import { canonicalNamespace, renderCanonical } from '../config/canonical.js';
import { renderReport, textLine } from '../config/report-format.js';
import { validateSources } from '../config/validate.js';
import { ApplyNamespaceRequestSchema, ApplyOutcome } from '../gen/prism/admin/v1/control_plane_pb.js';
import { isPrismError, PrismError } from '../errors.js';
import { asset } from './assets.js';
import type { Html } from './html.js';
import { KpiBoard } from './kpi-board.js';
import * as pages from './pages.js';
import { ConsoleSessions, type ConsoleLogin, type ConsoleSession } from './sessions.js';

const C = pages.CONSOLE;
const SESSION_COOKIE = 'prism_console';
const LOGIN_COOKIE = 'prism_console_login';
const MAX_FORM_BYTES = 1024 * 1024;

export interface ConsoleOptions {
  controlPlane: ControlPlane;
  /** The admin's own authorizer: the console asks it as the gRPC method it mirrors. */
  authenticate: Authenticate;
  /** Present when auth is on: where people log in. */
  login?: ConsoleLogin;
  /** Public base URL of the console's HTTP port (default: from the request's Host). */
  publicUrl?: string;
  heartbeatIntervalMs: number;
  logger: Logger;
  /** HTTPS serving: the session cookie then must be Secure (it is, always). */
  now?: () => number;
}

interface Stream {
  res: ServerResponse;
  key: string;
  render: () => Promise<Html>;
  session?: ConsoleSession;
}

/**
 * The web console (docs/console.md): server-rendered pages under /console on the admin's HTTP
 * port, live fragments over server-sent events once a second, login with the admin's issuer.
 */
export class Console {
  readonly kpis: KpiBoard;
  private readonly sessions?: ConsoleSessions;
  private readonly streams = new Set<Stream>();
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly options: ConsoleOptions) {
    this.now = options.now ?? Date.now;
    this.kpis = new KpiBoard(options.heartbeatIntervalMs * 3, this.now);
    if (options.login) this.sessions = new ConsoleSessions(options.login, this.now);
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    for (const s of this.streams) s.res.end();
    this.streams.clear();
  }

  /** Handles requests under /console; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    if (url.pathname !== C && !url.pathname.startsWith(`${C}/`)) return false;
    this.route(req, res, url).catch((err: unknown) => {
      if (!isPrismError(err))
        this.options.logger.error({ err, path: url.pathname }, 'console request failed');
      if (!res.headersSent)
        this.send(
          res,
          statusOf(err),
          pages.messagePage('Error', isPrismError(err) ? err.message : 'internal error; see the admin log'),
        );
      else res.end();
    });
    return true;
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path.startsWith(`${C}/assets/`)) return this.asset(res, path.slice(`${C}/assets/`.length));
    if (path === `${C}/login` && method === 'GET') return this.beginLogin(req, res, url);
    if (path === `${C}/callback` && method === 'GET') return this.finishLogin(req, res, url);
    const session = this.sessions?.get(cookies(req)[SESSION_COOKIE]);
    if (this.sessions && !session) {
      if (path.startsWith(`${C}/events/`)) {
        this.send(res, 401, pages.messagePage('Logged out', 'Your session ended; reload to log in again.'));
        return;
      }
      if (method !== 'GET') {
        this.send(res, 401, pages.messagePage('Logged out', 'Your session ended; log in again.'));
        return;
      }
      res
        .writeHead(303, { location: `${C}/login?return=${encodeURIComponent(url.pathname + url.search)}` })
        .end();
      return;
    }
    if (method === 'POST') {
      const form = await readForm(req);
      if (session && form.get('csrf') !== session.csrf) {
        this.send(
          res,
          403,
          pages.messagePage(
            'Refused',
            'The form token does not match your session (CSRF); reload the page and try again.',
          ),
        );
        return;
      }
      if (path === `${C}/logout`) {
        if (session) this.sessions!.end(session.id);
        res.writeHead(303, { location: `${C}/namespaces`, 'set-cookie': clearCookie(SESSION_COOKIE) }).end();
        return;
      }
      if (path === `${C}/apply`) return this.apply(res, session, form.get('yaml') ?? '');
      this.send(res, 405, pages.messagePage('Not allowed', `POST is not accepted on ${path}`));
      return;
    }
    if (method !== 'GET') {
      this.send(res, 405, pages.messagePage('Not allowed', `${method} is not accepted`));
      return;
    }
    if (path === C || path === `${C}/`) {
      res.writeHead(303, { location: `${C}/namespaces` }).end();
      return;
    }
    const read = await this.authorize(session, 'ListNamespaces');
    if (read !== true) {
      this.send(res, 403, pages.messagePage('Not allowed', read, await this.viewer(session)));
      return;
    }
    const q = (url.searchParams.get('q') ?? '').trim();
    if (path === `${C}/namespaces`) {
      this.send(res, 200, pages.namespacesPage(q, await this.namespacesTable(q), await this.viewer(session)));
      return;
    }
    if (path === `${C}/events/namespaces`)
      return this.stream(req, res, session, `namespaces?${q}`, () => this.namespacesTable(q));
    if (path === `${C}/proxies`) {
      this.send(res, 200, pages.proxiesPage(await this.proxiesTable(), await this.viewer(session)));
      return;
    }
    if (path === `${C}/events/proxies`)
      return this.stream(req, res, session, 'proxies', () => this.proxiesTable());
    const nsMatch = /^\/console\/(events\/)?namespaces\/([^/]+)$/.exec(path);
    if (nsMatch) {
      const name = decodeURIComponent(nsMatch[2]!);
      if (nsMatch[1])
        return this.stream(req, res, session, `namespace:${name}`, () => this.namespaceKpis(name));
      return this.namespacePage(res, session, name);
    }
    if (path === `${C}/apply`) {
      const viewer = await this.viewer(session);
      if (!viewer.mayApply) {
        this.send(
          res,
          403,
          pages.messagePage(
            'Not allowed',
            (await this.authorize(session, 'ApplyNamespace')) as string,
            viewer,
          ),
        );
        return;
      }
      this.send(res, 200, pages.applyPage(viewer, ''));
      return;
    }
    this.send(
      res,
      404,
      pages.messagePage('Not found', `There is no console page at ${path}.`, await this.viewer(session)),
    );
  }

  // ---- pages ----

  private async namespacesTable(q: string): Promise<Html> {
    const needle = q.toLowerCase();
    const rows = (await this.options.controlPlane.list())
      .filter((ns) => !needle || ns.name.includes(needle) || ns.team.toLowerCase().includes(needle))
      .sort((a, b) => a.name.localeCompare(b.name));
    return pages.namespacesTable(rows, q, (name) => this.kpis.namespace(name));
  }

  private async namespacePage(
    res: ServerResponse,
    session: ConsoleSession | undefined,
    name: string,
  ): Promise<void> {
    const cp = this.options.controlPlane;
    const { namespace, assignment } = await cp.get(name);
    const history = await cp.history(name);
    this.send(
      res,
      200,
      pages.namespacePage(
        name,
        {
          declaration: namespace,
          yaml: renderCanonical([canonicalNamespace(namespace)], 'yaml'),
          assignment,
          history,
          kpiPanel: await this.namespaceKpis(name),
        },
        await this.viewer(session),
      ),
    );
  }

  private async namespaceKpis(name: string): Promise<Html> {
    const owner = (await this.options.controlPlane.list()).find((n) => n.name === name)?.ownerProxy ?? '';
    return pages.kpiPanel(this.kpis.namespace(name), this.kpis.history('namespace', name), owner);
  }

  private async proxiesTable(): Promise<Html> {
    const proxies = await this.options.controlPlane.proxies();
    const live = proxies.filter((p) => p.live).map((p) => p.proxyId);
    const partitions = new Map<string, number>();
    for (let p = 0; p < PARTITION_COUNT; p++) {
      const owner = ownerOf(p, live);
      if (owner) partitions.set(owner, (partitions.get(owner) ?? 0) + 1);
    }
    const namespaces = await this.options.controlPlane.list();
    const rows: pages.ProxyRow[] = proxies
      .sort((a, b) => Number(b.live) - Number(a.live) || a.proxyId.localeCompare(b.proxyId))
      .map((p) => ({
        ...p,
        startedAtMs: this.kpis.startedAtMs(p.proxyId),
        partitions: partitions.get(p.proxyId) ?? 0,
        namespaces: namespaces
          .filter((n) => n.ownerProxy === p.proxyId)
          .map((n) => n.name)
          .sort(),
        kpis: p.live ? this.kpis.proxy(p.proxyId) : undefined,
        history: this.kpis.history('proxy', p.proxyId),
      }));
    return pages.proxiesTable(rows, this.now());
  }

  private async apply(res: ServerResponse, session: ConsoleSession | undefined, yaml: string): Promise<void> {
    const allowed = await this.authorize(session, 'ApplyNamespace');
    const viewer = await this.viewer(session);
    if (allowed !== true) {
      this.send(res, 403, pages.messagePage('Not allowed', allowed, viewer));
      return;
    }
    const { report, loaded } = validateSources([{ file: '<pasted>', text: yaml }]);
    if (report.errors > 0 || loaded.length === 0) {
      this.send(res, 422, pages.applyPage(viewer, yaml, { ok: false, text: renderReport(report, 'text') }));
      return;
    }
    const principal = session
      ? await this.options.authenticate(bearer(session), 'ApplyNamespace')
      : 'anonymous';
    const lines: string[] = [];
    for (const { request } of loaded) {
      try {
        const r = await this.options.controlPlane.apply(
          create(ApplyNamespaceRequestSchema, { namespace: request, source: 'console' }),
          principal,
        );
        const a = r.assignment!;
        lines.push(
          `${request.namespace}: ${OUTCOMES[r.outcome]} — version ${a.version}, partition ${a.partition}${a.ownerProxy ? `, proxy ${a.ownerProxy}` : ''}`,
          ...a.patterns.flatMap((p) =>
            p.slots.map(
              (s) =>
                `  ${p.name}.${s.slot} → ${s.backend} ${s.endpoint}${s.credentialRef ? ` (credentials ${s.credentialRef})` : ''}`,
            ),
          ),
        );
        this.options.logger.info(
          { namespace: request.namespace, outcome: OUTCOMES[r.outcome], principal },
          'namespace applied from the console',
        );
      } catch (err) {
        const text =
          err instanceof InvalidNamespaceError
            ? err.diagnostics.map(textLine).join('') + err.message
            : isPrismError(err)
              ? `${err.code}: ${err.message}`
              : 'internal error; see the admin log';
        if (!isPrismError(err)) this.options.logger.error({ err }, 'console apply failed');
        this.send(
          res,
          isPrismError(err) ? statusOf(err) : 500,
          pages.applyPage(viewer, yaml, { ok: false, text: [...lines, text].join('\n') }),
        );
        return;
      }
    }
    this.send(res, 200, pages.applyPage(viewer, yaml, { ok: true, text: lines.join('\n') }));
  }

  // ---- auth ----

  /** True, or the reason the admin's authorizer gives. */
  private async authorize(session: ConsoleSession | undefined, method: string): Promise<true | string> {
    try {
      await this.options.authenticate(session ? bearer(session) : new Metadata(), method);
      return true;
    } catch (err) {
      if (isPrismError(err)) return err.message;
      throw err;
    }
  }

  private async viewer(session: ConsoleSession | undefined): Promise<pages.Viewer> {
    return {
      person: session?.person,
      csrf: session?.csrf,
      mayApply: (await this.authorize(session, 'ApplyNamespace')) === true,
    };
  }

  private async beginLogin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!this.sessions) {
      res.writeHead(303, { location: `${C}/namespaces` }).end();
      return;
    }
    const returnTo = safeReturn(url.searchParams.get('return'));
    const { loginId, url: target } = await this.sessions.begin(`${this.base(req)}${C}/callback`, returnTo);
    res
      .writeHead(303, {
        location: target,
        'set-cookie': cookie(LOGIN_COOKIE, loginId, 'Lax', 600),
        'cache-control': 'no-store',
      })
      .end();
  }

  private async finishLogin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!this.sessions) {
      res.writeHead(303, { location: `${C}/namespaces` }).end();
      return;
    }
    let finished: Awaited<ReturnType<ConsoleSessions['finish']>>;
    try {
      finished = await this.sessions.finish(cookies(req)[LOGIN_COOKIE], url);
    } catch (err) {
      if (!isPrismError(err)) throw err;
      this.send(res, 401, pages.messagePage('Login failed', pages.layoutLink(err.message, `${C}/login`)));
      return;
    }
    this.options.logger.info({ person: finished.session.person }, 'console login');
    // A 200 page that moves on by itself: a SameSite=Strict cookie set during a redirect chain that
    // began at the identity provider would not be sent on the next hop.
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'set-cookie': [cookie(SESSION_COOKIE, finished.session.id, 'Strict'), clearCookie(LOGIN_COOKIE)],
    });
    res.end(pages.loggedIn(finished.returnTo).text);
  }

  private base(req: IncomingMessage): string {
    if (this.options.publicUrl) return this.options.publicUrl.replace(/\/$/, '');
    const secure = 'encrypted' in req.socket && (req.socket as { encrypted?: boolean }).encrypted;
    return `${secure ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`;
  }

  // ---- transport ----

  private asset(res: ServerResponse, name: string): Promise<void> {
    const found = asset(name);
    if (!found) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return Promise.resolve();
    }
    return found.body.then((body) => {
      res.writeHead(200, {
        'content-type': found.type,
        'cache-control': 'public, max-age=3600',
        'x-content-type-options': 'nosniff',
      });
      res.end(body);
    });
  }

  private send(res: ServerResponse, code: number, page: Html): void {
    res.writeHead(code, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy':
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self' http: https:",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
    });
    res.end(page.text);
  }

  private async stream(
    req: IncomingMessage,
    res: ServerResponse,
    session: ConsoleSession | undefined,
    key: string,
    render: () => Promise<Html>,
  ): Promise<void> {
    const first = await render();
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\n${event(first)}`);
    const stream: Stream = { res, key, render, session };
    this.streams.add(stream);
    // The response closes when the tab goes away (or the admin stops): stop rendering for it.
    res.on('close', () => this.streams.delete(stream));
  }

  /** Once a second: sample the KPIs, render each distinct live fragment once, send it to its streams. */
  private async tick(): Promise<void> {
    this.kpis.sample();
    if (this.streams.size === 0) return;
    const rendered = new Map<string, Promise<string | undefined>>();
    await Promise.all(
      [...this.streams].map(async (s) => {
        if (s.session && s.session.expiresAtMs <= this.now()) {
          this.streams.delete(s);
          s.res.end();
          return;
        }
        let text = rendered.get(s.key);
        if (!text) {
          text = s.render().then(event, (err: unknown) => {
            if (!isPrismError(err)) this.options.logger.warn({ err, key: s.key }, 'console fragment failed');
            return undefined;
          });
          rendered.set(s.key, text);
        }
        const body = await text;
        if (body && !s.res.destroyed) s.res.write(body);
      }),
    );
  }
}

const OUTCOMES: Record<ApplyOutcome, string> = {
  [ApplyOutcome.UNSPECIFIED]: 'unchanged',
  [ApplyOutcome.CREATED]: 'created',
  [ApplyOutcome.UPDATED]: 'updated',
  [ApplyOutcome.UNCHANGED]: 'unchanged',
};

function event(fragment: Html): string {
  return (
    fragment.text
      .split('\n')
      .map((line) => `data: ${line}\n`)
      .join('') + '\n'
  );
}

function bearer(session: ConsoleSession): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${session.accessToken}`);
  return md;
}

function statusOf(err: unknown): number {
  if (!isPrismError(err)) return 500;
  switch (err.code) {
    case 'E_NOT_FOUND':
      return 404;
    case 'E_UNAUTHENTICATED':
      return 401;
    case 'E_PERMISSION_DENIED':
      return 403;
    case 'E_INVALID_NAMESPACE':
    case 'E_USAGE':
      return 422;
    case 'E_VERSION_CONFLICT':
      return 409;
    default:
      return 503;
  }
}

function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

function cookie(name: string, value: string, sameSite: 'Strict' | 'Lax', maxAgeSeconds?: number): string {
  return `${name}=${value}; Path=${C}; HttpOnly; Secure; SameSite=${sameSite}${maxAgeSeconds ? `; Max-Age=${maxAgeSeconds}` : ''}`;
}

function clearCookie(name: string): string {
  return `${name}=; Path=${C}; HttpOnly; Secure; SameSite=Strict; Max-Age=0`;
}

/** Only a console path may be returned to after login (no open redirect). */
function safeReturn(value: string | null): string {
  return value && value.startsWith(`${C}/`) && !value.startsWith('//') && !value.includes('\\')
    ? value
    : `${C}/namespaces`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded'))
    throw new PrismError('E_USAGE', 'forms must be sent as application/x-www-form-urlencoded');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new PrismError('E_USAGE', 'the form is larger than 1 MiB');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
