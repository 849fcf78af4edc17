// Registry credentials from a file in the format `docker login` writes (~/.docker/config.json)
// and `podman login` writes (containers auth.json): {"auths": {"<key>": {"auth": base64(user:pass)}}}.
// A key is a registry ("registry.example:5000", "https://index.docker.io/v1/") or, as containers
// auth.json allows, a registry with a repository namespace ("quay.io/org", "quay.io/org/app");
// the most specific key that covers the image's repository wins.
//
// The file is re-read when it changes (inode, size and mtime checked per pull), bounded in size,
// and a file that is missing or broken is logged and treated as giving no credentials: it never
// stops pulls of images that need none. Credential helpers (credHelpers, credsStore) would mean
// running programs the file names: they are not supported, and a file using them says so in the log.
import { open, stat } from 'node:fs/promises';
import { errnoCode } from '../../errors.js';
import { log } from '../../log.js';
import { canonicalRegistry } from './credential-scope.js';
import type { RegistryAuthConfig } from './hosts.js';

/** A credentials file is a few KiB; refuse anything past this. */
export const MAX_AUTH_FILE_BYTES = 1 << 20;

interface Entry {
  registry: string;
  /** Repository namespace under the registry ("" for the whole registry). */
  path: string;
  auth: RegistryAuthConfig;
}

function entriesOf(raw: unknown, file: string): Entry[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('not a JSON object');
  const doc = raw as Record<string, unknown>;
  if (doc.credHelpers !== undefined || doc.credsStore !== undefined) {
    log.warn({ file }, 'registry credentials file names credential helpers (credHelpers/credsStore): crib does not run them; only "auths" entries are used');
  }
  const auths = doc.auths ?? {};
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) throw new Error('"auths" is not an object');
  const out: Entry[] = [];
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    if (typeof value !== 'object' || value === null) throw new Error(`auths["${key}"] is not an object`);
    const v = value as Record<string, unknown>;
    const str = (k: string): string | undefined => {
      const x = v[k];
      if (x === undefined || x === '') return undefined;
      if (typeof x !== 'string') throw new Error(`auths["${key}"].${k} is not a string`);
      return x;
    };
    // "https://index.docker.io/v1/" names Docker Hub, not a "v1" namespace: drop a URL's path.
    const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(key);
    const bare = isUrl ? key : key.replace(/\/+$/, '');
    const slash = isUrl ? -1 : bare.indexOf('/');
    const registry = canonicalRegistry(slash < 0 ? bare : bare.slice(0, slash));
    if (!registry) {
      log.warn({ file, key }, 'registry credentials file: key names no registry; entry ignored');
      continue;
    }
    const auth: RegistryAuthConfig = { username: str('username'), password: str('password'), auth: str('auth'), identityToken: str('identitytoken') };
    out.push({ registry, path: slash < 0 ? '' : bare.slice(slash + 1), auth });
  }
  return out;
}

export class RegistryAuthFile {
  private identity = '';
  private entries: Entry[] = [];

  constructor(readonly path: string) {}

  /** Re-reads the file if it changed since the last call. */
  async refresh(): Promise<void> {
    let identity: string;
    try {
      const st = await stat(this.path);
      identity = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (identity === this.identity) return;
      if (!st.isFile()) throw new Error('not a regular file');
      if (st.size > MAX_AUTH_FILE_BYTES) throw new Error(`${st.size} bytes, more than the ${MAX_AUTH_FILE_BYTES} allowed`);
    } catch (err) {
      const why = errnoCode(err) === 'ENOENT' ? 'missing' : (err as Error).message;
      if (this.identity !== why) log.warn({ file: this.path, err: why }, 'registry credentials file not used');
      this.identity = why;
      this.entries = [];
      return;
    }
    try {
      const fh = await open(this.path, 'r');
      let text: string;
      try {
        const buf = Buffer.alloc(MAX_AUTH_FILE_BYTES + 1);
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        if (bytesRead > MAX_AUTH_FILE_BYTES) throw new Error(`grew past the ${MAX_AUTH_FILE_BYTES} bytes allowed`);
        text = buf.subarray(0, bytesRead).toString('utf8');
      } finally {
        await fh.close();
      }
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        // Not the parser's message: it may quote the file's text, which holds secrets.
        throw new Error('not valid JSON');
      }
      this.entries = entriesOf(raw, this.path);
      log.info({ file: this.path, entries: this.entries.length }, 'registry credentials file read');
    } catch (err) {
      log.warn({ file: this.path, err: (err as Error).message }, 'registry credentials file not used');
      this.entries = [];
    }
    this.identity = identity;
  }

  /**
   * The credentials the file gives `registry` (any spelling) for repository `repoPath`: the
   * entry with the longest namespace covering it, on path-component boundaries.
   */
  lookup(registry: string, repoPath: string): RegistryAuthConfig | undefined {
    const reg = canonicalRegistry(registry);
    if (!reg) return undefined;
    let best: Entry | undefined;
    for (const e of this.entries) {
      if (e.registry !== reg) continue;
      if (e.path !== '' && repoPath !== e.path && !repoPath.startsWith(`${e.path}/`)) continue;
      if (!best || e.path.length > best.path.length) best = e;
    }
    return best?.auth;
  }
}
