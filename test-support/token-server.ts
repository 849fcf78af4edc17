// A Docker-style token server (the "realm" of a Bearer challenge) for tests: it checks Basic
// credentials or OAuth2 refresh tokens and issues RS256 JWTs that docker-registry 2.8 accepts. The
// signing key's self-signed certificate (made with openssl) is the registry's rootcertbundle, and
// each token carries it in the x5c header so the registry can verify the chain. It counts every
// request so tests can prove the token flow was used.
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TokenUser {
  username: string;
  password: string;
}

export interface TokenRequestRecord {
  method: string;
  grantType: 'basic' | 'refresh_token' | 'password' | 'anonymous';
  account?: string;
  scope: string;
  granted: boolean;
}

export interface TokenServer {
  /** "http://127.0.0.1:<port>" */
  url: string;
  /** The realm URL the registry's challenge names. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate for the registry's auth.token.rootcertbundle. */
  certPath: string;
  /** Every token request, in order. */
  requests: TokenRequestRecord[];
  /** A refresh token ("identity token") for `username`, as `docker login` would keep. */
  issueRefreshToken(username: string): string;
  /** A signed token granting `actions` on `repository`, usable directly as a registry token. */
  mintToken(repository: string, actions: string[], ttlSeconds?: number): string;
  stop(): Promise<void>;
}

export interface TokenServerOptions {
  /** Where the key and certificate are written (the caller removes it). */
  dir: string;
  users: TokenUser[];
  service: string;
  issuer?: string;
  /** Grant pull to requests without credentials (default false: they get 401). */
  anonymousPull?: boolean;
  ttlSeconds?: number;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const keyPath = join(opts.dir, 'token-key.pem');
  const certPath = join(opts.dir, 'token-cert.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath,
    '-days', '2', '-subj', '/CN=crib-test-token-issuer']);
  const key: KeyObject = createPrivateKey(await readFile(keyPath));
  const certDer = new X509Certificate(await readFile(certPath)).raw.toString('base64');
  const issuer = opts.issuer ?? 'crib-test-token-issuer';
  const ttl = opts.ttlSeconds ?? 300;
  const refreshTokens = new Map<string, string>();
  const requests: TokenRequestRecord[] = [];

  const mint = (subject: string, access: { type: string; name: string; actions: string[] }[], ttlSeconds = ttl): string => {
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] };
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: issuer, sub: subject, aud: opts.service, exp: now + ttlSeconds, nbf: now - 10, iat: now,
      jti: randomBytes(12).toString('hex'), access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
  };

  const accessFor = (scopes: string[], authenticated: boolean) =>
    scopes.flatMap((scope) => {
      const m = /^repository:([^:]+):(.+)$/.exec(scope);
      if (!m) return [];
      const wanted = m[2]!.split(',');
      const actions = authenticated ? wanted.filter((a) => ['pull', 'push', '*', 'delete'].includes(a)) : wanted.filter((a) => a === 'pull');
      return [{ type: 'repository', name: m[1]!, actions }];
    });

  const checkBasic = (req: IncomingMessage): TokenUser | null | undefined => {
    const h = req.headers.authorization;
    if (!h) return undefined;
    if (!h.startsWith('Basic ')) return null;
    const decoded = Buffer.from(h.slice(6), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    const user = opts.users.find((u) => u.username === decoded.slice(0, i) && u.password === decoded.slice(i + 1));
    return user ?? null;
  };

  const deny = (res: ServerResponse, message: string) => {
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="crib-test-token"' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message }] }));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    let params = url.searchParams;
    let grantType: TokenRequestRecord['grantType'] = 'anonymous';
    let subject: string | undefined;
    if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req));
      const grant = params.get('grant_type');
      if (grant === 'refresh_token') {
        grantType = 'refresh_token';
        subject = refreshTokens.get(params.get('refresh_token') ?? '');
      } else if (grant === 'password') {
        grantType = 'password';
        const u = opts.users.find((x) => x.username === params.get('username') && x.password === params.get('password'));
        subject = u?.username;
      }
      if (!subject) {
        requests.push({ method: 'POST', grantType, scope: params.getAll('scope').join(' '), granted: false });
        deny(res, 'invalid grant');
        return;
      }
    } else {
      const user = checkBasic(req);
      if (user === null) {
        requests.push({ method: 'GET', grantType: 'basic', scope: params.getAll('scope').join(' '), granted: false });
        deny(res, 'invalid username or password');
        return;
      }
      if (user) {
        grantType = 'basic';
        subject = user.username;
      }
    }
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
    if (params.get('service') && params.get('service') !== opts.service) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'unknown service' }] }));
      return;
    }
    if (!subject && !opts.anonymousPull) {
      requests.push({ method: req.method ?? 'GET', grantType, scope: scopes.join(' '), granted: false });
      deny(res, 'authentication required');
      return;
    }
    requests.push({ method: req.method ?? 'GET', grantType, account: subject, scope: scopes.join(' '), granted: true });
    const token = mint(subject ?? '', accessFor(scopes, subject !== undefined));
    const body: Record<string, unknown> = { token, access_token: token, expires_in: ttl, issued_at: new Date().toISOString() };
    if (req.method === 'POST' && subject && params.get('access_type') === 'offline') body['refresh_token'] = issueRefreshToken(subject);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  const issueRefreshToken = (username: string): string => {
    const t = randomBytes(24).toString('hex');
    refreshTokens.set(t, username);
    return t;
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    realm: `${url}/token`,
    service: opts.service,
    issuer,
    certPath,
    requests,
    issueRefreshToken,
    mintToken: (repository, actions, ttlSeconds) => mint('minted', [{ type: 'repository', name: repository, actions }], ttlSeconds),
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
