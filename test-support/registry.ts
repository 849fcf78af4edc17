// A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
// filesystem storage in a temp dir, optionally behind htpasswd basic auth or a token server.
// stop() kills it by pid and removes everything it made; a process exit hook kills any registry
// a crashed test left running.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { startTokenServer, type TokenServer, type TokenUser } from './token-server.js';

const run = promisify(execFile);
export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface TestRegistry {
  /** "127.0.0.1:<port>", the domain of image references for this registry. */
  host: string;
  /** "http://127.0.0.1:<port>" ("https://…" with tls) */
  url: string;
  dir: string;
  /** With tls: the registry's self-signed certificate (PEM path). */
  certPath?: string;
  auth: 'none' | 'basic' | 'token';
  users: TokenUser[];
  tokenServer?: TokenServer;
  /** A request to the registry API as users[0] (handles basic and token auth). */
  request(method: string, path: string, opts?: { headers?: Record<string, string>; body?: Buffer }): Promise<RegistryResponse>;
  /** The registry's stdout and stderr so far. */
  logs(): string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  auth?: 'none' | 'basic' | 'token';
  users?: TokenUser[];
  /** Token auth: let requests without credentials pull. */
  anonymousPull?: boolean;
  /** Token auth: lifetime of issued tokens (default 300 s). */
  tokenTtlSeconds?: number;
  /** Serve https with a self-signed certificate for 127.0.0.1 (clients must skip verification). */
  tls?: boolean;
  /** How long the registry may take to answer (default 30 s; the emulated test guest needs more). */
  readyTimeoutMs?: number;
}

// The fixture's own requests to a TLS registry skip verification: its certificate is self-signed.
const unverified = new Agent({ connect: { rejectUnauthorized: false } });

const running = new Set<ChildProcess>();
let exitHook = false;
function killOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const p of running) if (p.pid && p.exitCode === null) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function yaml(s: string): string {
  return JSON.stringify(s);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const users = opts.users ?? (auth === 'none' ? [] : [{ username: 'crib', password: `pw-${randomBytes(6).toString('hex')}` }]);
  const dir = await mkdtemp(join(tmpdir(), `crib-registry-${process.pid}-`));
  let tokenServer: TokenServer | undefined;
  try {
    let authYaml = '';
    if (auth === 'basic') {
      const lines: string[] = [];
      for (const u of users) lines.push((await run('htpasswd', ['-Bbn', u.username, u.password])).stdout.trim());
      await writeFile(join(dir, 'htpasswd'), lines.join('\n') + '\n');
      authYaml = `auth:\n  htpasswd:\n    realm: crib-test\n    path: ${yaml(join(dir, 'htpasswd'))}\n`;
    } else if (auth === 'token') {
      const service = `crib-test-registry-${process.pid}`;
      tokenServer = await startTokenServer({ dir, users, service, anonymousPull: opts.anonymousPull, ttlSeconds: opts.tokenTtlSeconds });
      authYaml = `auth:\n  token:\n    realm: ${yaml(tokenServer.realm)}\n    service: ${yaml(service)}\n` +
        `    issuer: ${yaml(tokenServer.issuer)}\n    rootcertbundle: ${yaml(tokenServer.certPath)}\n`;
    }
    let tlsYaml = '';
    let certPath: string | undefined;
    if (opts.tls) {
      certPath = join(dir, 'tls-cert.pem');
      const keyPath = join(dir, 'tls-key.pem');
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
      tlsYaml = `  tls:\n    certificate: ${yaml(certPath)}\n    key: ${yaml(keyPath)}\n`;
    }
    // A port grabbed and released can be taken by someone else before the registry binds it:
    // try a few times.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const configPath = join(dir, 'config.yml');
      await writeFile(configPath,
        'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n' +
        `storage:\n  filesystem:\n    rootdirectory: ${yaml(join(dir, 'data'))}\n  delete:\n    enabled: true\n` +
        `http:\n  addr: 127.0.0.1:${port}\n` + tlsYaml + authYaml);
      const proc = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
      running.add(proc);
      killOnExit();
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<void>((resolve) => proc.once('exit', () => { running.delete(proc); resolve(); }));
      const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
      const ready = await waitReady(url, proc, opts.readyTimeoutMs ?? 30_000);
      if (!ready) {
        await stopProcess(proc, exited);
        if (attempt < 3 && /address already in use/.test(out)) continue;
        throw new Error(`docker-registry did not start:\n${out}`);
      }
      const registry: TestRegistry = {
        host: `127.0.0.1:${port}`, url, dir, certPath, auth, users, tokenServer,
        request: (method, path, o) => authedRequest(registry, method, path, o),
        logs: () => out,
        stop: async () => {
          await stopProcess(proc, exited);
          await tokenServer?.stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
      return registry;
    }
  } catch (err) {
    await tokenServer?.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function waitReady(url: string, proc: ChildProcess, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && proc.exitCode === null) {
    try {
      const res = await request(`${url}/v2/`, { dispatcher: unverified, headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 401) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function stopProcess(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function authedRequest(
  registry: TestRegistry, method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer } = {},
): Promise<RegistryResponse> {
  const url = path.startsWith('http') ? path : `${registry.url}${path}`;
  const send = async (authorization?: string) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (authorization) headers['authorization'] = authorization;
    const res = await request(url, { dispatcher: unverified, method: method as 'GET', headers, body: opts.body });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  };
  const user = registry.users[0];
  const basic = user && `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
  if (registry.auth === 'none') return send();
  if (registry.auth === 'basic') return send(basic);
  let res = await send();
  if (res.status !== 401) return res;
  const challenge = String(res.headers['www-authenticate'] ?? '');
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  const tokenUrl = new URL(params['realm']!);
  tokenUrl.searchParams.set('service', params['service'] ?? '');
  // Ask for push as well as pull so one token serves the whole upload.
  if (params['scope']) tokenUrl.searchParams.set('scope', params['scope'].replace(/:pull$/, ':pull,push'));
  const tr = await request(tokenUrl, { headers: { authorization: basic! } });
  if (tr.statusCode !== 200) throw new Error(`token server answered ${tr.statusCode}: ${await tr.body.text()}`);
  const { token } = (await tr.body.json()) as { token: string };
  res = await send(`Bearer ${token}`);
  return res;
}
