/** Drivers of the `objects` capability: S3-compatible stores, the local filesystem, memstore. */
import type { AnyDriver, DriverOptions } from '../interfaces.js';
import { createFilesystemObjects } from './filesystem.js';
import { createS3Objects } from './s3.js';

export async function createS3Driver(options: DriverOptions): Promise<AnyDriver> {
  return createS3Objects(options);
}

export async function createFilesystemDriver(options: DriverOptions): Promise<AnyDriver> {
  return createFilesystemObjects(options);
}
