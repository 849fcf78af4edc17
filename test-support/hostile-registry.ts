// A registry that does what the test tells it, for attacks on the pull path: it serves images and
// crafted manifests and blobs from memory over plain http, on any local address (a 10.x address
// from off-loopback-address.ts stands in for a host on the network), and records every request
// with the Authorization header it carried, so a test can prove which credentials reached where.
// It can demand basic or bearer auth, act as a token realm, redirect blob downloads elsewhere,
// or hand a request to the test's own handler (a body that never ends, a lying Content-Length).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { BuiltImage } from './image-builder.js';

export interface SeenRequest {
  method: string;
  /** Path and query. */
  path: string;
  authorization?: string;
}

export type HostileAuth =
  | { kind: 'none' }
  /** Basic auth: requests without these credentials get 401 with a Basic challenge. */
  | { kind: 'basic'; username: string; password: string }
  /** Token auth: the challenge names `realm`; tokens from any hostile registry's /token pass. */
  | { kind: 'bearer'; realm: string; service?: string };

/** What serveImage needs of an image: BuiltImage and CraftedImage both fit. */
export type ServableImage = Pick<BuiltImage, 'manifest' | 'config'> & { layers: { digest: string; blob: Buffer }[] };

/** A custom answer: return true when the request was handled. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface HostileRegistry {
  /** "http://<address>:<port>" */
  url: string;
  /** "<address>:<port>", the domain of image references served here. */
  host: string;
  requests: SeenRequest[];
  auth: HostileAuth;
  /** Token endpoint (/token) users: requests with these basic credentials get a token. */
  tokenUsers: { username: string; password: string }[];
  /** Blob GETs answer 307 to this origin + the same path. */
  redirectBlobsTo?: string;
  /** Serve an image under repo:tag (and by manifest digest). */
  serveImage(repo: string, tag: string, image: ServableImage): void;
  serveManifest(repo: string, reference: string, mediaType: string, bytes: Buffer): void;
  serveBlob(digest: string, bytes: Buffer): void;
  /** Handlers tried before the built-in routes, newest first. */
  handle(handler: Handler): void;
  clearHandlers(): void;
  /** Requests carrying any Authorization header. */
  authorized(): SeenRequest[];
  stop(): Promise<void>;
}

/** Tokens issued by any hostile registry's /token in this process. */
const issuedTokens = new Set<string>();

function registryError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ code, message }] });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export async function startHostileRegistry(opts: { address?: string; auth?: HostileAuth } = {}): Promise<HostileRegistry> {
  const manifests = new Map<string, { mediaType: string; bytes: Buffer }>();
  const blobs = new Map<string, Buffer>();
  const handlers: Handler[] = [];
  const sockets = new Set<Socket>();

  const authorizedFor = (req: IncomingMessage): boolean => {
    const auth = registry.auth;
    const h = req.headers.authorization;
    if (auth.kind === 'none') return true;
    if (auth.kind === 'basic') return h === `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    return h !== undefined && h.startsWith('Bearer ') && issuedTokens.has(h.slice(7));
  };

  const challenge = (res: ServerResponse, repo: string) => {
    const auth = registry.auth;
    const value = auth.kind === 'basic'
      ? 'Basic realm="hostile"'
      : `Bearer realm="${auth.kind === 'bearer' ? auth.realm : ''}",service="${auth.kind === 'bearer' ? auth.service ?? 'hostile' : ''}",scope="repository:${repo}:pull"`;
    registryError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': value });
  };

  const token = (req: IncomingMessage, res: ServerResponse) => {
    const h = req.headers.authorization;
    const ok = registry.tokenUsers.some((u) => h === `Basic ${Buffer.from(`${u.username}:${u.password}`).toString('base64')}`);
    if (!ok) return registryError(res, 401, 'UNAUTHORIZED', 'bad credentials');
    const t = randomBytes(16).toString('hex');
    issuedTokens.add(t);
    const body = JSON.stringify({ token: t, expires_in: 300 });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const route = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') return token(req, res);
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      if (!authorizedFor(req)) return challenge(res, '');
      res.writeHead(200, { 'content-length': 2 }).end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) return registryError(res, 404, 'NOT_FOUND', 'no such route');
    const [, repo, kind, reference] = m as unknown as [string, string, string, string];
    if (!authorizedFor(req)) return challenge(res, repo);
    if (kind === 'manifests') {
      const found = manifests.get(`${repo}@${reference}`);
      if (!found) return registryError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      res.writeHead(200, { 'content-type': found.mediaType, 'content-length': found.bytes.length });
      res.end(req.method === 'HEAD' ? undefined : found.bytes);
      return;
    }
    if (registry.redirectBlobsTo) {
      res.writeHead(307, { location: `${registry.redirectBlobsTo}${req.url}`, 'content-length': 0 });
      res.end();
      return;
    }
    const blob = blobs.get(reference);
    if (!blob) return registryError(res, 404, 'BLOB_UNKNOWN', 'blob unknown');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
    res.end(req.method === 'HEAD' ? undefined : blob);
  };

  const server = createServer((req, res) => {
    registry.requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', authorization: req.headers.authorization });
    // The body of a request (a token POST) is not needed; drain it so the socket stays usable.
    req.resume();
    for (const h of [...handlers].reverse()) if (h(req, res)) return;
    route(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, opts.address ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = `${address}:${port}`;

  const registry: HostileRegistry = {
    url: `http://${host}`,
    host,
    requests: [],
    auth: opts.auth ?? { kind: 'none' },
    tokenUsers: [],
    serveImage(repo, tag, image) {
      this.serveManifest(repo, tag, image.manifest.mediaType, image.manifest.bytes);
      this.serveBlob(image.config.digest, image.config.bytes);
      for (const l of image.layers) this.serveBlob(l.digest, l.blob);
    },
    serveManifest(repo, reference, mediaType, bytes) {
      manifests.set(`${repo}@${reference}`, { mediaType, bytes });
    },
    serveBlob(digest, bytes) {
      blobs.set(digest, bytes);
    },
    handle(handler) {
      handlers.push(handler);
    },
    clearHandlers() {
      handlers.length = 0;
    },
    authorized() {
      return this.requests.filter((r) => r.authorization !== undefined);
    },
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
  return registry;
}
