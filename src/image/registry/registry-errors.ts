// Turning a registry's answer into an error a node operator can act on: the registry explains
// itself in a JSON body ({"errors":[{"code","message","detail"}]}), and that text is what the
// operator needs to see, not just the status code. Nothing here ever sees credentials: messages
// are built from status codes, the registry's own error text, host names and image names.
import {
  CribError, DeadlineExceededError, FailedPreconditionError, NotFoundError, PermissionDeniedError, UnauthenticatedError,
  UnavailableError, errnoCode,
} from '../../errors.js';
import { readBoundedBody } from './bounded-body.js';
import { BODY_CUT_SHORT, BODY_TIMEOUT, HEADERS_TIMEOUT } from './http-failures.js';
import type { RegistryResponse } from './registry-http.js';

const MAX_ERROR_BODY = 64 * 1024;
const ERROR_BODY_DEADLINE_MS = 30_000;

const MAX_REGISTRY_MESSAGE = 1000;

/** The registry's own explanation from an error body, or a short excerpt of a non-JSON body. */
export function registryMessage(body: string): string {
  const message = explanation(body);
  // The registry's words go into an error a person reads: a page of them helps nobody.
  return message.length > MAX_REGISTRY_MESSAGE ? `${message.slice(0, MAX_REGISTRY_MESSAGE)}…` : message;
}

function explanation(body: string): string {
  const text = body.trim();
  if (text === '') return '';
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      return parsed.errors
        .map((e) => [e.code, e.message].filter((x) => typeof x === 'string' && x !== '').join(': '))
        .filter((s) => s !== '')
        .join('; ');
    }
  } catch {
    // Not JSON: a proxy's or load balancer's page; show its first line.
  }
  const firstLine = text.split('\n', 1)[0]!;
  return firstLine.length > 200 ? `${firstLine.slice(0, 200)}…` : firstLine;
}

/**
 * Read (a bounded amount of) an error response body, within `deadlineMs`; the rest is not
 * read: a server could stream an error page forever.
 */
export async function readErrorBody(res: RegistryResponse, deadlineMs = ERROR_BODY_DEADLINE_MS): Promise<string> {
  try {
    const bytes = await readBoundedBody(res.body, { limit: MAX_ERROR_BODY, deadlineMs, what: 'an error response' });
    return bytes.toString('utf8');
  } catch {
    // A body cut short or too slow says nothing more; the status code still does.
    return '';
  }
}

/** The error for a non-success registry answer about `what` ("image \"x\"", "layer sha256:…"). */
export async function errorForResponse(res: RegistryResponse, host: string, what: string): Promise<CribError> {
  const detail = registryMessage(await readErrorBody(res));
  const said = `registry ${host} answered ${res.statusCode}${detail ? ` ${detail}` : ''}`;
  switch (res.statusCode) {
    case 401:
      return new UnauthenticatedError(`pull of ${what} is not authorized: ${said} (check the registry credentials)`);
    case 403:
      return new PermissionDeniedError(`pull of ${what} is forbidden: ${said}`);
    case 404:
      return new NotFoundError(`${what} not found: ${said}`);
    default:
      return new UnavailableError(`pull of ${what} failed: ${said}`);
  }
}

const RETRYABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  HEADERS_TIMEOUT, BODY_TIMEOUT, BODY_CUT_SHORT, 'ECONNABORTED',
]);

/** A failure of the connection rather than an answer: worth another try. */
export function isRetryableNetworkError(err: unknown): boolean {
  if (err instanceof CribError) return false;
  const code = errnoCode(err) ?? errnoCode((err as { cause?: unknown })?.cause);
  if (code && RETRYABLE_CODES.has(code)) return true;
  return err instanceof Error && /terminated|other side closed|socket hang up/i.test(err.message);
}

/** A TLS handshake failure, such as speaking https to a plain-http server. */
export function isTlsError(err: unknown): boolean {
  const code = errnoCode(err) ?? errnoCode((err as { cause?: unknown })?.cause) ?? '';
  const message = err instanceof Error ? err.message : '';
  return code.startsWith('ERR_SSL') || code === 'EPROTO' || /wrong version number|ssl routines|tls/i.test(message);
}

const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE',
]);

/**
 * The host speaks TLS but its certificate is not trusted: a configuration problem that no retry
 * and no fallback to plain http can fix.
 */
export function certificateError(err: unknown, host: string): FailedPreconditionError | undefined {
  const code = errnoCode(err) ?? errnoCode((err as { cause?: unknown })?.cause);
  if (!code || !CERTIFICATE_CODES.has(code)) return undefined;
  return new FailedPreconditionError(
    `registry ${host} presented a TLS certificate that is not trusted (${describeNetworkError(err)}); ` +
    `install its CA on this node or set insecure = true for "${host}" in the registry config`);
}

/** A short, credential-free description of a network failure. */
export function describeNetworkError(err: unknown): string {
  const code = errnoCode(err) ?? errnoCode((err as { cause?: unknown })?.cause);
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

export function isAbortError(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  return err instanceof Error && err.name === 'AbortError';
}

/** The error once an endpoint stayed unreachable through every retry. */
export function unreachableError(host: string, what: string, err: unknown, attempts: number): CribError {
  const code = errnoCode(err) ?? errnoCode((err as { cause?: unknown })?.cause);
  const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  if (code === HEADERS_TIMEOUT) {
    return new DeadlineExceededError(`pull of ${what}: registry ${host} did not answer in time (${tries})`);
  }
  return new UnavailableError(`pull of ${what}: registry ${host} is unreachable after ${tries}: ${describeNetworkError(err)}`);
}
