// Which endpoints serve a registry's images and how to talk to them: mirrors in order, then the
// registry itself (unless overrideUpstream); plain http only for insecure or loopback hosts.
import type { CribConfig } from '../../config/config.js';
import { InvalidArgumentError } from '../../errors.js';
import { DEFAULT_IMAGE_LIMITS, imageLimitsFromConfig, type ImageLimits } from '../limits.js';
import { DOCKER_HUB, isLoopbackHost } from '../reference.js';
import type { Endpoint } from './types.js';

export interface RegistryAuthConfig {
  username?: string;
  password?: string;
  /** base64 "user:password", as in Docker's config.json. */
  auth?: string;
  /** OAuth2 refresh token exchanged at the token realm. */
  identityToken?: string;
}

export interface RegistryHostOptions {
  /** Endpoint URLs like "http://127.0.0.1:5001", tried in order before the registry itself. */
  mirrors?: string[];
  /** Never fall back to the registry itself when every mirror failed. */
  overrideUpstream?: boolean;
  /** Plain http, or https without certificate verification. */
  insecure?: boolean;
  auth?: RegistryAuthConfig;
}

export interface RegistryHostsConfig {
  /** Keyed by registry host ("docker.io", "127.0.0.1:5000") or "*" for every other host. */
  hosts?: Record<string, RegistryHostOptions>;
  /** Time allowed for a response's headers (default 30 s). */
  requestTimeoutMs?: number;
  /** Retries of one endpoint on 5xx, 429 and connection failures (default 3). */
  retries?: number;
  /** First backoff delay; doubled per retry (default 200 ms). */
  backoffMs?: number;
  /** A body whose bytes stop arriving this long is aborted (default 5 min). */
  progressTimeoutMs?: number;
  /** A blob download averaging fewer bytes per second than this, once minRateGraceMs has passed,
   * is aborted (default 1 KiB/s). */
  minBytesPerSecond?: number;
  /** How long a blob download runs before minBytesPerSecond applies (default 5 min). */
  minRateGraceMs?: number;
  /** Bounds on manifests and blobs (defaults: DEFAULT_IMAGE_LIMITS). */
  limits?: Partial<ImageLimits>;
  /** A Docker config.json / containers auth.json to take registry credentials from. */
  authFile?: string;
}

export interface ResolvedHostsConfig {
  hosts: Record<string, RegistryHostOptions>;
  requestTimeoutMs: number;
  retries: number;
  backoffMs: number;
  progressTimeoutMs: number;
  minBytesPerSecond: number;
  minRateGraceMs: number;
  limits: ImageLimits;
}

export function withDefaults(config: RegistryHostsConfig = {}): ResolvedHostsConfig {
  const resolved = {
    hosts: config.hosts ?? {},
    requestTimeoutMs: config.requestTimeoutMs ?? 30_000,
    retries: config.retries ?? 3,
    backoffMs: config.backoffMs ?? 200,
    progressTimeoutMs: config.progressTimeoutMs ?? 5 * 60_000,
    minBytesPerSecond: config.minBytesPerSecond ?? 1024,
    minRateGraceMs: config.minRateGraceMs ?? 5 * 60_000,
    limits: { ...DEFAULT_IMAGE_LIMITS, ...config.limits },
  };
  for (const [host, opts] of Object.entries(resolved.hosts)) {
    for (const mirror of opts.mirrors ?? []) parseEndpointUrl(host, mirror);
  }
  return resolved;
}

/** The registry hosts config from the daemon's TOML config ([image] and [registry.*]). */
export function hostsConfigFromCrib(config: CribConfig): RegistryHostsConfig {
  const hosts: Record<string, RegistryHostOptions> = {};
  for (const [host, h] of Object.entries(config.registry)) {
    hosts[host] = {
      mirrors: h.mirrors,
      overrideUpstream: h.override_upstream,
      insecure: h.insecure,
      auth: h.auth && {
        username: h.auth.username,
        password: h.auth.password,
        auth: h.auth.auth,
        identityToken: h.auth.identity_token,
      },
    };
  }
  return {
    hosts,
    requestTimeoutMs: config.image.request_timeout,
    retries: config.image.retries,
    progressTimeoutMs: config.image.pull_progress_timeout,
    minBytesPerSecond: config.image.pull_min_rate,
    minRateGraceMs: config.image.pull_min_rate_grace,
    limits: imageLimitsFromConfig(config),
    authFile: config.image.auth_file,
  };
}

/** The hosts-config entry for a host: its own, else the "*" default, else none. */
export function hostOptions(config: ResolvedHostsConfig, host: string): RegistryHostOptions | undefined {
  return config.hosts[host] ?? config.hosts['*'];
}

function parseEndpointUrl(registry: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError(`registry "${registry}": mirror "${raw}" is not a URL like "https://mirror.example" or "http://127.0.0.1:5001"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`registry "${registry}": mirror "${raw}" must use http or https`);
  }
  if (url.username || url.password) {
    throw new InvalidArgumentError(`registry "${registry}": mirror URLs must not carry credentials; use the auth table of the mirror's host`);
  }
  return url;
}

/** Where the registry itself answers: Docker Hub's API lives on registry-1.docker.io. */
function upstreamHost(domain: string): string {
  return domain === DOCKER_HUB ? 'registry-1.docker.io' : domain;
}

/** The endpoints to try, in order, for images of one registry domain. */
export function endpointsFor(config: ResolvedHostsConfig, domain: string): Endpoint[] {
  const opts = hostOptions(config, domain);
  const endpoints: Endpoint[] = [];
  for (const raw of opts?.mirrors ?? []) {
    const url = parseEndpointUrl(domain, raw);
    const mirrorOpts = config.hosts[url.host];
    const insecure = mirrorOpts?.insecure ?? false;
    endpoints.push({
      url: `${url.protocol}//${url.host}`,
      host: url.host,
      pathPrefix: url.pathname.replace(/\/+$/, '').replace(/\/v2$/, ''),
      mirror: true,
      insecure,
      httpFallback: false,
    });
  }
  if (!opts?.overrideUpstream || endpoints.length === 0) {
    const host = upstreamHost(domain);
    const insecure = opts?.insecure ?? false;
    endpoints.push({
      url: `https://${host}`,
      host,
      pathPrefix: '',
      mirror: false,
      insecure,
      // Docker's rule: https first, plain http only for registries marked insecure or on loopback.
      httpFallback: insecure || isLoopbackHost(domain),
    });
  }
  return endpoints;
}
