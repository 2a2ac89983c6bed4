/** A dockerode client for the engine `dev up` found (kept apart from docker.ts, which finds it without loading dockerode). */
import Docker from 'dockerode';
import { PrismError } from '../errors.js';
import { dockerodeOptions } from './docker.js';

export function connectEngine(target: string): Docker {
  const options = dockerodeOptions(target);
  if (!options)
    throw new PrismError(
      'E_USAGE',
      `cannot talk to the engine at ${target}: only unix:// and tcp:// are supported`,
    );
  return new Docker(options);
}
