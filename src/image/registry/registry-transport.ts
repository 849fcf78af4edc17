// One request to one registry endpoint, made robust: https first and plain http for loopback or
// insecure hosts that do not speak TLS; retries with exponential backoff on 5xx, 429 and
// connection failures; and the 401 → challenge → token → retry dance. What comes back is the
// registry's final answer for the caller to interpret; what is thrown is already a CribError.
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../../log.js';
import { Authenticator, parseChallenge, type Credentials } from './auth.js';
import type { ResolvedHostsConfig } from './hosts.js';
import { certificateError, isAbortError, isRetryableNetworkError, isTlsError, unreachableError } from './registry-errors.js';
import type { Endpoint } from './types.js';

export interface SendOptions {
  method?: 'GET' | 'HEAD';
  /** Path after the endpoint's base, starting with /v2/. */
  path: string;
  headers?: Record<string, string>;
  /** Token scope ("repository:library/busybox:pull"). */
  scope: string;
  creds?: Credentials;
  /** What is being fetched, for messages: `image "x"`, `layer sha256:…`. */
  what: string;
  signal?: AbortSignal;
  /** Body inactivity timeout handed to undici; 0 when the caller watches progress itself. */
  bodyTimeoutMs?: number;
}

// Registries send blob downloads to a CDN or object store with a redirect; undici drops the
// Authorization header when a redirect changes origin, so the registry's token is not leaked.
const MAX_REDIRECTS = 5;

export class RegistryTransport {
  private readonly agents: Agent[];
  readonly secure: Dispatcher;
  readonly insecure: Dispatcher;
  readonly auth: Authenticator;
  /** Hosts found to speak plain http, so later requests skip the failing https attempt. */
  private readonly plainHttp = new Set<string>();

  constructor(readonly config: ResolvedHostsConfig) {
    const common = { keepAliveTimeout: 10_000, connect: { timeout: config.requestTimeoutMs } };
    const secure = new Agent(common);
    const insecure = new Agent({ ...common, connect: { ...common.connect, rejectUnauthorized: false } });
    this.agents = [secure, insecure];
    this.secure = secure.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));
    this.insecure = insecure.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));
    this.auth = new Authenticator(secure, config.requestTimeoutMs);
  }

  async close(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.close()));
  }

  private baseUrl(ep: Endpoint): string {
    return ep.httpFallback && this.plainHttp.has(ep.host) ? `http://${ep.host}` : ep.url;
  }

  /** Send with retries; resolves with the final answer (any status), throws when unreachable. */
  async send(ep: Endpoint, opts: SendOptions): Promise<Dispatcher.ResponseData> {
    const retries = this.config.retries;
    for (let attempt = 0; ; attempt++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await this.sendAuthenticated(ep, opts);
      } catch (err) {
        if (isAbortError(err, opts.signal) || !isRetryableNetworkError(err)) throw wrapUnexpected(err, ep, opts);
        if (attempt >= retries) throw unreachableError(ep.host, opts.what, err, attempt + 1);
        log.debug({ registry: ep.host, attempt: attempt + 1, err: String(err) }, 'registry request failed; retrying');
        await sleep(this.backoff(attempt), undefined, { signal: opts.signal });
        continue;
      }
      const transient = res.statusCode >= 500 || res.statusCode === 429;
      if (!transient || attempt >= retries) return res;
      await res.body.dump().catch(() => undefined);
      log.debug({ registry: ep.host, status: res.statusCode, attempt: attempt + 1 }, 'registry answered a transient error; retrying');
      await sleep(Math.max(this.backoff(attempt), retryAfterMs(res)), undefined, { signal: opts.signal });
    }
  }

  private backoff(attempt: number): number {
    return this.config.backoffMs * 2 ** attempt;
  }

  private async sendAuthenticated(ep: Endpoint, opts: SendOptions): Promise<Dispatcher.ResponseData> {
    const challenge = this.auth.knownChallenge(ep.url);
    const authorization = challenge || opts.creds?.registryToken
      ? await this.auth.authorization(challenge ?? { scheme: 'bearer', params: {} }, opts.scope, opts.creds, ep.host)
      : undefined;
    const res = await this.sendRaw(ep, opts, authorization);
    // One round of challenge and answer: it covers both a first contact and a cached token the
    // registry no longer takes. A 401 after that is the caller's to report.
    if (res.statusCode !== 401 || opts.creds?.registryToken) return res;
    const fresh = parseChallenge(res.headers['www-authenticate']);
    if (!fresh) return res;
    await res.body.dump().catch(() => undefined);
    if (challenge && authorization) this.auth.invalidate(challenge, opts.scope, opts.creds);
    this.auth.rememberChallenge(ep.url, fresh);
    return this.sendRaw(ep, opts, await this.auth.authorization(fresh, opts.scope, opts.creds, ep.host));
  }

  private async sendRaw(ep: Endpoint, opts: SendOptions, authorization: string | undefined): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { 'user-agent': 'crib', ...opts.headers };
    if (authorization) headers['authorization'] = authorization;
    const base = this.baseUrl(ep);
    const go = (url: string) =>
      request(url + ep.pathPrefix + opts.path, {
        dispatcher: ep.insecure || url.startsWith('http:') ? this.insecure : this.secure,
        method: opts.method ?? 'GET',
        headers,
        signal: opts.signal,
        headersTimeout: this.config.requestTimeoutMs,
        bodyTimeout: opts.bodyTimeoutMs ?? this.config.progressTimeoutMs,
      });
    try {
      return await go(base);
    } catch (err) {
      const untrusted = certificateError(err, ep.host);
      if (untrusted) throw untrusted;
      // Docker's rule for insecure and loopback registries: when https cannot even shake hands,
      // the same host over plain http is the registry.
      if (!ep.httpFallback || !base.startsWith('https:') || isAbortError(err, opts.signal)) throw err;
      if (!isTlsError(err) && !isRetryableNetworkError(err)) throw err;
      const res = await go(`http://${ep.host}`);
      this.plainHttp.add(ep.host);
      return res;
    }
  }
}

function retryAfterMs(res: Dispatcher.ResponseData): number {
  const value = res.headers['retry-after'];
  const s = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(s) && s > 0 ? Math.min(s * 1000, 30_000) : 0;
}

function wrapUnexpected(err: unknown, ep: Endpoint, opts: SendOptions): unknown {
  if (isAbortError(err, opts.signal)) return err;
  if (err instanceof Error && 'grpcCode' in err) return err;
  return unreachableError(ep.host, opts.what, err, 1);
}
