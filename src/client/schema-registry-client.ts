/**
 * A small client of the admin's schema registry REST API (docs/schemas.md), for prismctl's schema
 * commands. Errors come back as RegistryError with the registry's error code and message.
 */
import { RegistryError } from '../admin/schemas/errors.js';
import { PrismError } from '../errors.js';

export const DEFAULT_SCHEMA_REGISTRY_URL = 'http://localhost:8982';

export interface RegisteredVersion {
  subject: string;
  version: number;
  id: number;
  schema: string;
  schemaType?: string;
}

export class SchemaRegistryClient {
  private readonly base: string;

  constructor(
    url: string,
    private readonly token?: string,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  register(subject: string, schema: string, schemaType: string): Promise<{ id: number }> {
    return this.call('POST', `/subjects/${enc(subject)}/versions`, { schema, schemaType });
  }

  /** The live version of `subject` that has this schema. */
  lookup(subject: string, schema: string, schemaType: string): Promise<RegisteredVersion> {
    return this.call('POST', `/subjects/${enc(subject)}`, { schema, schemaType });
  }

  version(subject: string, version: string): Promise<RegisteredVersion> {
    return this.call('GET', `/subjects/${enc(subject)}/versions/${enc(version)}`);
  }

  byId(id: number): Promise<{ schema: string; schemaType?: string }> {
    return this.call('GET', `/schemas/ids/${id}`);
  }

  subjects(): Promise<string[]> {
    return this.call('GET', '/subjects');
  }

  versions(subject: string): Promise<number[]> {
    return this.call('GET', `/subjects/${enc(subject)}/versions`);
  }

  check(
    subject: string,
    version: string,
    schema: string,
    schemaType: string,
  ): Promise<{ is_compatible: boolean; messages: string[] }> {
    return this.call('POST', `/compatibility/subjects/${enc(subject)}/versions/${enc(version)}`, {
      schema,
      schemaType,
    });
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/vnd.schemaregistry.v1+json' };
    if (body !== undefined) headers['content-type'] = 'application/vnd.schemaregistry.v1+json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new PrismError(
        'E_UNREACHABLE',
        `cannot reach the schema registry at ${this.base}: ${(err as Error).message}`,
        {
          hint: 'is `prismctl admin serve` running? --registry names its HTTP address (--metrics-listen)',
        },
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const error = parsed as { error_code?: unknown; message?: unknown } | undefined;
      throw new RegistryError(
        typeof error?.error_code === 'number' ? error.error_code : res.status,
        typeof error?.message === 'string' ? error.message : `${method} ${path} answered HTTP ${res.status}`,
      );
    }
    return parsed as T;
  }
}

const enc = encodeURIComponent;
