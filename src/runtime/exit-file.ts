// Reading a monitor's exit file (native/monitor/exit-status.c): the exit of a process whose
// monitor could not tell us live (we were down, or not connected yet).
import { readFile } from 'node:fs/promises';
import { errnoCode } from '../errors.js';
import type { ExitRecord } from './container-runtime.js';

/** The exit record a monitor wrote, or undefined while there is none. */
export async function readExitFile(path: string): Promise<ExitRecord | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as ExitRecord;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}
