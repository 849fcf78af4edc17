// The failures the registry client's HTTP layers make themselves (registry-http.ts for most
// requests, blob-http.ts for blob bodies): their error codes, which registry-errors.ts sorts into
// retryable or not, and the error a cancelled request ends with.

export const HEADERS_TIMEOUT = 'ERR_REGISTRY_HEADERS_TIMEOUT';
export const BODY_TIMEOUT = 'ERR_REGISTRY_BODY_TIMEOUT';
/** A body that ended before the bytes the descriptor promised (blob-stream.ts). */
export const BODY_CUT_SHORT = 'ERR_REGISTRY_BODY_CUT_SHORT';
/** A blob response http1-response.ts refuses as malformed: not worth a retry. */
export const BAD_RESPONSE = 'ERR_REGISTRY_BAD_RESPONSE';
/** A blob response the connection ended before its framed end: worth a resume, as a reset is. */
export const BODY_TRUNCATED = 'ECONNRESET';

export function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The AbortError a request or body ends with when `signal` aborts it, carrying the reason's message. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return Object.assign(new Error(reason instanceof Error ? reason.message : 'the request was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}
