// Where CheckpointContainer may write: kubelet gives an absolute file path in a directory it
// made (/var/lib/kubelet/checkpoints/...). Checked before anything runs, so a bad location
// costs no dump.
import { lstat, stat } from 'node:fs/promises';
import { dirname, isAbsolute, normalize } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';

/** The most a location may be (PATH_MAX less room for the temporary name beside it). */
const MAX_LOCATION = 4000;

export async function checkedLocation(location: string): Promise<string> {
  if (!location) throw new InvalidArgumentError('CheckpointContainer: location must not be empty');
  if (location.length > MAX_LOCATION) throw new InvalidArgumentError(`CheckpointContainer: location is ${location.length} bytes, more than ${MAX_LOCATION}`);
  if (location.includes('\0')) throw new InvalidArgumentError('CheckpointContainer: location contains a NUL byte');
  if (!isAbsolute(location)) throw new InvalidArgumentError(`CheckpointContainer: location "${location}" must be an absolute path`);
  const path = normalize(location);
  if (path.endsWith('/')) throw new InvalidArgumentError(`CheckpointContainer: location "${location}" names a directory, not a file`);
  const dir = dirname(path);
  const ds = await stat(dir).catch(() => undefined);
  if (!ds?.isDirectory()) throw new InvalidArgumentError(`CheckpointContainer: the directory of location "${location}" (${dir}) does not exist`);
  const st = await lstat(path).catch(() => undefined);
  if (st && !st.isFile()) {
    throw new InvalidArgumentError(`CheckpointContainer: location "${location}" exists and is not a regular file; it is not replaced`);
  }
  return path;
}
