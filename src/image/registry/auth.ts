// Registry authentication as Docker and containerd do it: send the request, and on a 401 read the
// WWW-Authenticate challenge. "Basic" wants the username and password; "Bearer" names a token
// realm, which we ask for a token scoped to repository:<path>:pull (with Basic credentials, an
// OAuth2 refresh token, or anonymously). Tokens are cached per realm, service, scope and
// identity until they expire, within bounds (MAX_CACHED_TOKENS). Credentials never enter a
// message, a log line or an error.
//
// The realm is named by the registry, so it is checked before anything is sent to it: the
// registry's credentials go to a realm on another host only over https (Docker Hub's realm is
// auth.docker.io, so another host as such is fine: TLS proves who it is), over plain http only
// to loopback or a host configured insecure; and a registry that is not on this node may not
// point us at this node or at the link-local range where cloud metadata services answer.
import { createHash } from 'node:crypto';
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError, UnauthenticatedError, UnavailableError } from '../../errors.js';
import { setRecent } from '../../sys/recent-entries.js';
import { isLoopbackHost } from '../reference.js';
import { readBoundedBody } from './bounded-body.js';
import { isNodeLocalAddress, mayCarryCredentials, plainHttpRefusal } from './credential-scope.js';
import { hostOptions, type RegistryAuthConfig, type ResolvedHostsConfig } from './hosts.js';
import { describeNetworkError, readErrorBody, registryMessage } from './registry-errors.js';
import type { RegistryHttp, RegistryResponse } from './registry-http.js';
import type { CriAuth } from './types.js';

// A token response is a small JSON document (a JWT is a few KiB); 1 MiB is far past any real one.
const MAX_TOKEN_RESPONSE = 1 << 20;
/**
 * Tokens kept, the least recently used dropped first: one per realm, repository and identity
 * pulled from within a token's lifetime (minutes). Unbounded, every repository a node ever
 * pulled kept its token, and a pod spec naming new repositories on a registry whose token server
 * sends 1 MiB tokens could grow the daemon by a MiB each.
 */
export const MAX_CACHED_TOKENS = 128;
/** A token longer than this is used but not kept: real ones are 1-4 KiB, and with MAX_CACHED_TOKENS
 * the kept ones stay under 1 MiB. */
export const MAX_CACHED_TOKEN_CHARS = 8 << 10;
/** Registry endpoints whose last challenge is kept (and, in registry-transport.ts, that are known
 * to answer over plain http): the registries a node pulls from, with room. */
export const MAX_KNOWN_ENDPOINTS = 64;

export interface Credentials {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Credentials from a CRI AuthConfig or a hosts-config auth table; undefined when empty. */
export function credentialsFrom(auth: CriAuth | RegistryAuthConfig | undefined): Credentials | undefined {
  if (!auth) return undefined;
  const creds: Credentials = {};
  if (auth.username) creds.username = auth.username;
  if (auth.password) creds.password = auth.password;
  if (auth.auth) {
    const decoded = Buffer.from(auth.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0 || !/^[A-Za-z0-9+/=_-]+$/.test(auth.auth.trim())) {
      throw new InvalidArgumentError('registry credentials: the "auth" field is not base64 of "username:password"');
    }
    creds.username = decoded.slice(0, colon);
    creds.password = decoded.slice(colon + 1);
  }
  if (auth.identityToken) creds.identityToken = auth.identityToken;
  if ('registryToken' in auth && auth.registryToken) creds.registryToken = auth.registryToken;
  return Object.keys(creds).length > 0 ? creds : undefined;
}

/** Parse a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const value = Array.isArray(header) ? header.find((h) => /^\s*bearer\b/i.test(h)) ?? header[0] : header;
  if (!value) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(value);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const p of m[2]!.matchAll(re)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme, params };
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

function identityKey(creds: Credentials | undefined): string {
  if (!creds) return 'anonymous';
  // A hash, so the cache key itself never holds a secret.
  return createHash('sha256').update(JSON.stringify([creds.username, creds.password, creds.identityToken])).digest('hex');
}

/** Obtains and caches Authorization header values for registry requests. */
export class Authenticator {
  private readonly tokens = new Map<string, CachedToken>();
  /** Token requests under way, so parallel layer downloads share one round trip. */
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** The last challenge seen per endpoint URL, so later requests authenticate up front. */
  private readonly challenges = new Map<string, Challenge>();

  constructor(
    private readonly config: ResolvedHostsConfig,
    private readonly http: RegistryHttp,
  ) {}

  rememberChallenge(endpointUrl: string, challenge: Challenge): void {
    setRecent(this.challenges, endpointUrl, challenge, MAX_KNOWN_ENDPOINTS);
  }

  knownChallenge(endpointUrl: string): Challenge | undefined {
    return this.challenges.get(endpointUrl);
  }

  /** Forget a cached token that the registry refused, so the next call fetches a fresh one. */
  invalidate(challenge: Challenge, scope: string, creds: Credentials | undefined): void {
    this.tokens.delete(this.cacheKey(challenge, scope, creds));
  }

  private cacheKey(challenge: Challenge, scope: string, creds: Credentials | undefined): string {
    return [challenge.params['realm'], challenge.params['service'], scope, identityKey(creds)].join('\n');
  }

  /** The Authorization header value answering `challenge`, or undefined to go anonymous. */
  async authorization(
    challenge: Challenge, scope: string, creds: Credentials | undefined, host: string,
  ): Promise<string | undefined> {
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    if (challenge.scheme === 'basic') {
      if (creds?.username === undefined || creds.password === undefined) {
        throw new UnauthenticatedError(`registry ${host} requires a username and password (basic auth) and none were given`);
      }
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    const key = this.cacheKey(challenge, scope, creds);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) {
      setRecent(this.tokens, key, cached, MAX_CACHED_TOKENS);
      return `Bearer ${cached.token}`;
    }
    if (cached) this.tokens.delete(key);
    let pending = this.inflight.get(key);
    if (!pending) {
      // Not tied to one caller's signal: other pulls may be waiting on the same token.
      pending = this.fetchToken(challenge, scope, creds, host)
        .then((t) => {
          if (t.token.length <= MAX_CACHED_TOKEN_CHARS) setRecent(this.tokens, key, t, MAX_CACHED_TOKENS);
          return t;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return `Bearer ${(await pending).token}`;
  }

  private async fetchToken(
    challenge: Challenge, scope: string, creds: Credentials | undefined, host: string,
  ): Promise<CachedToken> {
    const realm = challenge.params['realm'];
    if (!realm) throw new UnavailableError(`registry ${host} asked for a bearer token without naming a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UnavailableError(`registry ${host} named a token realm that is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new UnavailableError(`registry ${host} named a token realm with scheme ${url.protocol}`);
    }
    if (url.username || url.password) throw new UnavailableError(`registry ${host} named a token realm carrying credentials`);
    if (url.host !== host && isNodeLocalAddress(url.host) && !isLoopbackHost(host)) {
      throw new FailedPreconditionError(
        `registry ${host} named a token realm on this node or a link-local address (${url.origin}); refused`);
    }
    if (creds && !mayCarryCredentials(this.config, url)) {
      throw new FailedPreconditionError(plainHttpRefusal(url, `registry ${host} asked for its credentials to be sent to the token realm`));
    }
    const service = challenge.params['service'];
    const where = `token server ${url.host} of registry ${host}`;
    const insecure = url.protocol === 'https:' && (hostOptions(this.config, url.host)?.insecure ?? false);
    const timeouts = { headersTimeoutMs: this.config.requestTimeoutMs, bodyTimeoutMs: this.config.requestTimeoutMs };
    let res: RegistryResponse;
    try {
      if (creds?.identityToken) {
        // An identity token is an OAuth2 refresh token: exchange it with a POST (docker login's way).
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'crib' });
        if (service) form.set('service', service);
        form.set('scope', scope);
        res = await this.http.request(url, {
          insecure, method: 'POST', ...timeouts,
          headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString(),
        });
      } else {
        if (service) url.searchParams.set('service', service);
        url.searchParams.set('scope', scope);
        const headers: Record<string, string> = {};
        if (creds?.username !== undefined && creds.password !== undefined) {
          url.searchParams.set('account', creds.username);
          headers['authorization'] = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
        }
        res = await this.http.request(url, { insecure, method: 'GET', headers, ...timeouts });
      }
    } catch (err) {
      throw new UnavailableError(`${where} is unreachable: ${describeNetworkError(err)}`);
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      const detail = registryMessage(await readErrorBody(res));
      const refused = creds ? 'refused the credentials' : 'refused anonymous access (give registry credentials)';
      throw new UnauthenticatedError(`${where} ${refused} (${res.statusCode}${detail ? ` ${detail}` : ''})`);
    }
    if (res.statusCode !== 200) {
      const detail = registryMessage(await readErrorBody(res));
      throw new UnavailableError(`${where} answered ${res.statusCode}${detail ? ` ${detail}` : ''}`);
    }
    const bytes = await readBoundedBody(res.body, {
      limit: MAX_TOKEN_RESPONSE,
      deadlineMs: this.config.progressTimeoutMs,
      what: `the answer of ${where}`,
      tooLarge: () => new ResourceExhaustedError(`${where} answered with more than 1 MiB; a token response is a few KiB`),
    });
    let body: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      body = JSON.parse(bytes.toString('utf8')) as typeof body;
    } catch {
      throw new UnavailableError(`${where} answered with a body that is not JSON`);
    }
    if (typeof body !== 'object' || body === null) throw new UnavailableError(`${where} answered with a body that is not a JSON object`);
    const token = body.access_token || body.token;
    if (typeof token !== 'string' || token === '') throw new UnavailableError(`${where} answered without a token`);
    // The spec's default lifetime is 60 s; keep a margin so a token does not expire in flight.
    const lifetimeS = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    const issued = body.issued_at ? Date.parse(body.issued_at) : NaN;
    const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
    return { token, expiresAt: start + lifetimeS * 1000 - Math.min(10_000, lifetimeS * 100) };
  }
}
