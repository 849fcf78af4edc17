// One request to one registry endpoint, made robust: https first and plain http for loopback or
// insecure hosts that do not speak TLS; retries with exponential backoff on 5xx, 429 and
// connection failures; the 401 → challenge → token → retry dance; and redirects, followed here
// rather than by the HTTP layer so that each hop is checked. What comes back is the registry's final
// answer for the caller to interpret; what is thrown is already a CribError.
import { setTimeout as sleep } from 'node:timers/promises';
import { CribError, FailedPreconditionError, UnavailableError } from '../../errors.js';
import { log } from '../../log.js';
import { addRecent } from '../../sys/recent-entries.js';
import { Authenticator, MAX_KNOWN_ENDPOINTS, parseChallenge, type Challenge, type Credentials } from './auth.js';
import { mayCarryCredentials, plainHttpAllowed, plainHttpRefusal } from './credential-scope.js';
import { hostOptions, type ResolvedHostsConfig } from './hosts.js';
import { certificateError, isAbortError, isRetryableNetworkError, isTlsError, unreachableError } from './registry-errors.js';
import { discardBody, RegistryHttp, type RegistryResponse } from './registry-http.js';
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
  /** Body inactivity timeout; 0 when the caller watches progress itself. */
  bodyTimeoutMs?: number;
  /** A blob's GET (RegistryRequest.blob). */
  blob?: boolean;
}

// Registries send blob downloads to a CDN or object store with a redirect. Each hop is checked:
// the Authorization header goes only to the origin the request was made to (once a redirect
// leaves it, no later hop gets it back), a plain-http target must be loopback or configured
// insecure, and TLS is verified unless the target's own host is configured insecure.
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export class RegistryTransport {
  private readonly http: RegistryHttp;
  readonly auth: Authenticator;
  /** Hosts found to speak plain http, so later requests skip the failing https attempt (the most
   * recent MAX_KNOWN_ENDPOINTS). */
  private readonly plainHttp = new Set<string>();

  constructor(readonly config: ResolvedHostsConfig) {
    this.http = new RegistryHttp();
    this.auth = new Authenticator(config, this.http);
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private baseUrl(ep: Endpoint): string {
    return ep.httpFallback && this.plainHttp.has(ep.host) ? `http://${ep.host}` : ep.url;
  }

  /** Send with retries; resolves with the final answer (any status), throws when unreachable. */
  async send(ep: Endpoint, opts: SendOptions): Promise<RegistryResponse> {
    const retries = this.config.retries;
    for (let attempt = 0; ; attempt++) {
      let res: RegistryResponse;
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
      await discardBody(res.body);
      log.debug({ registry: ep.host, status: res.statusCode, attempt: attempt + 1 }, 'registry answered a transient error; retrying');
      await sleep(Math.max(this.backoff(attempt), retryAfterMs(res)), undefined, { signal: opts.signal });
    }
  }

  private backoff(attempt: number): number {
    return this.config.backoffMs * 2 ** attempt;
  }

  private async sendAuthenticated(ep: Endpoint, opts: SendOptions): Promise<RegistryResponse> {
    const challenge = this.auth.knownChallenge(ep.url);
    const authorization = challenge || opts.creds?.registryToken
      ? await this.authorize(ep, challenge ?? { scheme: 'bearer', params: {} }, opts)
      : undefined;
    const res = await this.sendRaw(ep, opts, authorization);
    // One round of challenge and answer: it covers both a first contact and a cached token the
    // registry no longer takes. A 401 after that is the caller's to report.
    if (res.statusCode !== 401 || opts.creds?.registryToken) return res;
    const fresh = parseChallenge(res.headers['www-authenticate']);
    if (!fresh) return res;
    await discardBody(res.body);
    if (challenge && authorization) this.auth.invalidate(challenge, opts.scope, opts.creds);
    this.auth.rememberChallenge(ep.url, fresh);
    return this.sendRaw(ep, opts, await this.authorize(ep, fresh, opts));
  }

  /**
   * The Authorization answering `challenge` at `ep`. Credentials (and tokens bought with them)
   * are not sent to an endpoint reached over plain http unless it is loopback or configured
   * insecure: the pull fails instead, saying why, rather than go on anonymously and leave the
   * operator puzzling over a 401 from a registry they did give credentials for.
   */
  private async authorize(ep: Endpoint, challenge: Challenge, opts: SendOptions): Promise<string | undefined> {
    const url = new URL(this.baseUrl(ep));
    if (opts.creds && !ep.insecure && !mayCarryCredentials(this.config, url)) {
      throw new FailedPreconditionError(plainHttpRefusal(url, `registry ${ep.host} asked for credentials for ${opts.what}`));
    }
    return this.auth.authorization(challenge, opts.scope, opts.creds, ep.host);
  }

  private async sendRaw(ep: Endpoint, opts: SendOptions, authorization: string | undefined): Promise<RegistryResponse> {
    const base = this.baseUrl(ep);
    const go = (origin: string) => this.follow(ep, opts, new URL(origin + ep.pathPrefix + opts.path), authorization);
    try {
      return await go(base);
    } catch (err) {
      // Our own verdicts (a refused redirect) are final: no plain-http retry can change them.
      if (err instanceof CribError) throw err;
      const untrusted = certificateError(err, ep.host);
      if (untrusted) throw untrusted;
      // Docker's rule for insecure and loopback registries: when https cannot even shake hands,
      // the same host over plain http is the registry.
      if (!ep.httpFallback || !base.startsWith('https:') || isAbortError(err, opts.signal)) throw err;
      if (!isTlsError(err) && !isRetryableNetworkError(err)) throw err;
      const res = await go(`http://${ep.host}`);
      addRecent(this.plainHttp, ep.host, MAX_KNOWN_ENDPOINTS);
      return res;
    }
  }

  /** GET `url`, following redirects hop by hop under the rules at MAX_REDIRECTS. */
  private async follow(ep: Endpoint, opts: SendOptions, url: URL, authorization: string | undefined): Promise<RegistryResponse> {
    const origin = url.origin;
    let current = url;
    let auth = authorization;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': 'crib', ...opts.headers };
      if (auth) headers['authorization'] = auth;
      const res = await this.http.request(current, {
        insecure: this.insecureFor(ep, current),
        method: opts.method ?? 'GET',
        headers,
        signal: opts.signal,
        headersTimeoutMs: this.config.requestTimeoutMs,
        bodyTimeoutMs: opts.bodyTimeoutMs ?? this.config.progressTimeoutMs,
        blob: opts.blob,
      });
      const location = REDIRECT_STATUSES.has(res.statusCode) ? res.headers['location'] : undefined;
      if (typeof location !== 'string') return res;
      await discardBody(res.body);
      // Messages name origins only: a redirect URL's query often carries a signature.
      const from = `registry ${ep.host} redirected ${opts.what}`;
      if (hop >= MAX_REDIRECTS) throw new UnavailableError(`${from} more than ${MAX_REDIRECTS} times`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new UnavailableError(`${from} to a location that is not a URL`);
      }
      if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new UnavailableError(`${from} to a ${next.protocol} URL`);
      if (next.username || next.password) throw new UnavailableError(`${from} to a URL carrying credentials (${next.host})`);
      if (next.protocol === 'http:' && !plainHttpAllowed(this.config, next.host)) {
        throw new FailedPreconditionError(
          `${from} to plain http (${next.origin}): crib follows redirects over plain http only to loopback and to hosts ` +
          `configured insecure; set insecure = true under [registry."${next.host}"] if that network is trusted`);
      }
      if (next.origin !== origin) auth = undefined;
      log.debug({ registry: ep.host, to: next.origin, status: res.statusCode }, 'following registry redirect');
      current = next;
    }
  }

  /** TLS verification per host: the endpoint's own setting, else the target host's config. */
  private insecureFor(ep: Endpoint, url: URL): boolean {
    if (url.protocol === 'http:') return false;
    return url.host === ep.host ? ep.insecure : (hostOptions(this.config, url.host)?.insecure ?? false);
  }
}

function retryAfterMs(res: RegistryResponse): number {
  const value = res.headers['retry-after'];
  const s = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(s) && s > 0 ? Math.min(s * 1000, 30_000) : 0;
}

function wrapUnexpected(err: unknown, ep: Endpoint, opts: SendOptions): unknown {
  if (isAbortError(err, opts.signal)) return err;
  if (err instanceof Error && 'grpcCode' in err) return err;
  return unreachableError(ep.host, opts.what, err, 1);
}
