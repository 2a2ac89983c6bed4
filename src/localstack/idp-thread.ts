/**
 * The embedded stack's development OpenID provider on its own worker thread. Loading
 * oidc-provider costs ~0.4 s of CPU; on a thread it loads beside the admin and proxy instead of
 * before them, which keeps the embedded stack ready in about a second.
 */
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface IdpThread {
  issuer: string;
  stop(): Promise<void>;
}

type Message = { issuer: string } | { error: string } | { stopped: true };

/** Starts the provider on 127.0.0.1:`port` in a worker thread; resolves with its issuer. */
export function startIdpThread(port: number): Promise<IdpThread> {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { port } });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (msg: Message) => {
      if ('error' in msg) {
        void worker.terminate();
        reject(new Error(msg.error));
        return;
      }
      if (!('issuer' in msg)) return;
      resolve({
        issuer: msg.issuer,
        stop: () =>
          new Promise<void>((done) => {
            worker.once('exit', () => done());
            worker.postMessage('stop');
          }),
      });
    });
  });
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const { DevIdp } = await import('../auth/dev-idp.js');
  const idp = new DevIdp({ port: (workerData as { port: number }).port });
  try {
    port.postMessage({ issuer: await idp.start() } satisfies Message);
    port.once('message', () => {
      void idp.stop().then(() => port.close());
    });
  } catch (err) {
    port.postMessage({ error: (err as Error).message } satisfies Message);
  }
}
