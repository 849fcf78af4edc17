// The container environment, built in containerd's order so `env` output matches it:
// default PATH, HOSTNAME, then the image Env, then the CRI envs — a later key replaces an
// earlier one in place, so PATH set by the image or by kubelet wins over the default.
import { InvalidArgumentError } from '../../errors.js';
import type { KeyValue__Output } from '../../gen/runtime/v1/KeyValue.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Applies `overrides` to `base`: "K=V" replaces K in place or appends; a bare "K" (image Env
 * only) unsets K, as Docker does.
 */
function overlay(base: string[], overrides: string[]): string[] {
  const out: (string | undefined)[] = [...base];
  const index = new Map<string, number>();
  out.forEach((e, i) => index.set(e!.split('=', 1)[0]!, i));
  for (const entry of overrides) {
    const eq = entry.indexOf('=');
    const key = eq < 0 ? entry : entry.slice(0, eq);
    const at = index.get(key);
    if (eq < 0) {
      if (at !== undefined) out[at] = undefined;
      continue;
    }
    if (at !== undefined) out[at] = entry;
    else {
      index.set(key, out.length);
      out.push(entry);
    }
  }
  return out.filter((e): e is string => e !== undefined);
}

export function containerEnv(imageEnv: string[] | undefined, criEnvs: KeyValue__Output[], hostname: string): string[] {
  const cri = criEnvs.map(({ key, value }) => {
    const text = Buffer.isBuffer(value) ? value.toString('utf8') : String(value ?? '');
    if (key === '' || key.includes('=') || key.includes('\0'))
      throw new InvalidArgumentError(`envs: invalid variable name ${JSON.stringify(key)} (must be non-empty, without "=" or NUL)`);
    if (text.includes('\0')) throw new InvalidArgumentError(`envs: value of ${key} contains a NUL byte`);
    return `${key}=${text}`;
  });
  const image = (imageEnv ?? []).filter((e) => e !== '');
  let env = [`PATH=${DEFAULT_PATH}`];
  env = overlay(env, [`HOSTNAME=${hostname}`]);
  env = overlay(env, image);
  return overlay(env, cri);
}
