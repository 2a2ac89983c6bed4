/** What `dev status` reports, for both stacks; `--json` prints a DevStatus. */
export interface ComponentStatus {
  name: string;
  /** container (Docker stack) or process (admin, proxy). */
  kind?: 'container' | 'process';
  /** running, stopped, or the engine's state of a container. */
  state: string;
  health: 'healthy' | 'unhealthy' | 'unknown';
  detail: string;
  endpoint: string;
  ports: Record<string, number>;
  uptimeSeconds: number;
  persists: boolean;
}

export interface DevStatus {
  stack: 'embedded' | 'docker' | 'none';
  /** The Docker stack's name and engine. */
  name?: string;
  engine?: string;
  running: boolean;
  healthy: boolean;
  pid?: number;
  startedAt?: string;
  persist?: boolean;
  dataDir?: string;
  logFile?: string;
  namespaces: string[];
  components: ComponentStatus[];
  /** Whether the admin and proxy serve TLS, and the CA their certificate chains to. */
  tls?: { enabled: boolean; caFile?: string };
}

export function tlsStatus(state: { tls?: { caFile: string } | undefined }): NonNullable<DevStatus['tls']> {
  return state.tls ? { enabled: true, caFile: state.tls.caFile } : { enabled: false };
}
