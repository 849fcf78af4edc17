// Single-use, short-lived tokens for streaming URLs (kubelet's request cache): the RPC stores the
// validated request and returns a URL naming a random token; the first HTTP request that
// presents the token takes the request out, so a URL cannot be replayed, and an unused one
// stops working after its time to live.
//
// The store is bounded (a flood of Exec RPCs must not grow memory without limit) and, when a
// bound is reached, refuses the NEW token with RESOURCE_EXHAUSTED instead of evicting an old
// one: evicting would let a flood of RPCs invalidate URLs other clients were just handed and are
// about to use. Each target (a container for exec/attach, a pod for port-forward) has its own,
// smaller share, so one client flooding one container cannot lock out exec into the others; and
// the total is bounded both in tokens and in bytes (an exec token holds its command line).
// Refused clients can retry as soon as outstanding tokens are used or expire (60 s at most).
import { randomBytes } from 'node:crypto';
import { DEFAULT_MAX_TOKENS, DEFAULT_MAX_TOKENS_PER_TARGET } from '../../config/limit-defaults.js';
import { ResourceExhaustedError } from '../../errors.js';

/** kubelet's streaming request cache keeps tokens for one minute. */
export const DEFAULT_TOKEN_TTL_MS = 60_000;
/** Bytes held by outstanding requests in all (a request is mostly its command line). */
export const DEFAULT_MAX_TOKEN_BYTES = 64 * 1024 * 1024;
/** Bytes held per target: four maximum-size command lines. */
export const DEFAULT_MAX_TOKEN_BYTES_PER_TARGET = 8 * 1024 * 1024;

export interface TokenStoreOptions<T> {
  ttlMs?: number;
  maxTokens?: number;
  maxTokensPerTarget?: number;
  maxBytes?: number;
  maxBytesPerTarget?: number;
  /** What a request is for: its share is counted apart from other targets'. */
  targetOf: (value: T) => string;
  /** Bytes a stored request holds. */
  sizeOf: (value: T) => number;
  /** Config keys naming the count limits, for the refusal messages. */
  limitNames?: { maxTokens: string; maxTokensPerTarget: string };
  now?: () => number;
}

interface Entry<T> {
  value: T;
  target: string;
  bytes: number;
  expiresAt: number;
}

interface Share {
  tokens: number;
  bytes: number;
}

export class TokenStore<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly shares = new Map<string, Share>();
  private bytes = 0;
  private readonly ttlMs: number;
  private readonly maxTokens: number;
  private readonly maxTokensPerTarget: number;
  private readonly maxBytes: number;
  private readonly maxBytesPerTarget: number;
  private readonly now: () => number;
  private readonly names: { maxTokens: string; maxTokensPerTarget: string };

  constructor(private readonly opts: TokenStoreOptions<T>) {
    this.ttlMs = opts.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
    this.maxTokens = opts.maxTokens ?? DEFAULT_MAX_TOKENS;
    this.maxTokensPerTarget = opts.maxTokensPerTarget ?? DEFAULT_MAX_TOKENS_PER_TARGET;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_TOKEN_BYTES;
    this.maxBytesPerTarget = opts.maxBytesPerTarget ?? DEFAULT_MAX_TOKEN_BYTES_PER_TARGET;
    this.now = opts.now ?? Date.now;
    this.names = opts.limitNames ?? { maxTokens: 'maxTokens', maxTokensPerTarget: 'maxTokensPerTarget' };
  }

  /** Stores a request and returns its token (32 random bytes, URL-safe base64), or refuses. */
  insert(value: T): string {
    this.evictExpired();
    const target = this.opts.targetOf(value);
    const bytes = this.opts.sizeOf(value);
    const share = this.shares.get(target) ?? { tokens: 0, bytes: 0 };
    const refuse = (why: string): never => {
      throw new ResourceExhaustedError(
        `too many streaming requests outstanding: ${why}; tokens are freed when their URL is used or after ` +
        `${Math.round(this.ttlMs / 1000)}s`);
    };
    if (share.tokens >= this.maxTokensPerTarget) {
      refuse(`${target} already has ${share.tokens} unused URLs (${this.names.maxTokensPerTarget} = ${this.maxTokensPerTarget})`);
    }
    if (this.entries.size >= this.maxTokens) refuse(`${this.entries.size} unused URLs on this node (${this.names.maxTokens} = ${this.maxTokens})`);
    if (share.bytes + bytes > this.maxBytesPerTarget) {
      refuse(`the unused URLs for ${target} would hold ${share.bytes + bytes} bytes of requests, more than ${this.maxBytesPerTarget}`);
    }
    if (this.bytes + bytes > this.maxBytes) refuse(`unused URLs would hold ${this.bytes + bytes} bytes of requests, more than ${this.maxBytes}`);
    const token = randomBytes(32).toString('base64url');
    this.entries.set(token, { value, target, bytes, expiresAt: this.now() + this.ttlMs });
    this.shares.set(target, { tokens: share.tokens + 1, bytes: share.bytes + bytes });
    this.bytes += bytes;
    return token;
  }

  /** Takes the request out: undefined when the token is unknown, used or expired. */
  consume(token: string): T | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.drop(token, entry);
    if (entry.expiresAt <= this.now()) return undefined;
    return entry.value;
  }

  get size(): number {
    this.evictExpired();
    return this.entries.size;
  }

  private drop(token: string, entry: Entry<T>): void {
    this.entries.delete(token);
    this.bytes -= entry.bytes;
    const share = this.shares.get(entry.target)!;
    if (share.tokens === 1) this.shares.delete(entry.target);
    else this.shares.set(entry.target, { tokens: share.tokens - 1, bytes: share.bytes - entry.bytes });
  }

  private evictExpired(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) {
      // Insertion order is expiry order (one TTL for all), so the first live entry ends the scan.
      if (entry.expiresAt > now) break;
      this.drop(token, entry);
    }
  }
}
