// What the container runs and where: the CRI command/args merged with the image's
// Entrypoint/Cmd the way Docker and containerd do, and the working directory.
import { InvalidArgumentError } from '../../errors.js';
import type { ImageConfig } from '../../image/image-config.js';

type ImageProcess = NonNullable<ImageConfig['config']>;

/**
 * CRI `command` replaces the image Entrypoint and drops the image Cmd; CRI `args` replace the
 * image Cmd. An image Entrypoint of `[""]` is Docker's way of saying "no entrypoint".
 */
export function processArgs(command: string[], args: string[], image: ImageProcess | undefined): string[] {
  let cmd = command;
  let arg = args;
  if (cmd.length === 0) {
    if (arg.length === 0) arg = [...(image?.Cmd ?? [])];
    const entrypoint = image?.Entrypoint ?? [];
    if (!(entrypoint.length === 1 && entrypoint[0] === '')) cmd = [...entrypoint];
  }
  const out = [...cmd, ...arg];
  if (out.length === 0) {
    throw new InvalidArgumentError(
      'no command specified: the container config has no command/args and the image has no Entrypoint/Cmd',
    );
  }
  for (const a of out) {
    // execve cannot carry a NUL inside an argument; fail here instead of inside the runtime.
    if (a.includes('\0')) throw new InvalidArgumentError(`container command/args: argument ${JSON.stringify(a)} contains a NUL byte`);
  }
  return out;
}

/** CRI working_dir, else the image WorkingDir, else "/". Must be absolute: runtimes chdir to it. */
export function workingDir(criWorkingDir: string, image: ImageProcess | undefined): string {
  const field = criWorkingDir !== '' ? 'working_dir' : 'image WorkingDir';
  const dir = criWorkingDir !== '' ? criWorkingDir : image?.WorkingDir || '/';
  if (!dir.startsWith('/')) throw new InvalidArgumentError(`${field} "${dir}" must be an absolute path`);
  if (dir.includes('\0')) throw new InvalidArgumentError(`${field} contains a NUL byte`);
  return dir;
}
