// Single-use, short-lived tokens for streaming URLs (kubelet's request cache): the RPC stores the
// validated request and returns a URL naming a random token; the first HTTP request that
// presents the token takes the request out, so a URL cannot be replayed, and an unused one
// stops working after its time to live.
import { randomBytes } from 'node:crypto';

/** kubelet's streaming request cache keeps tokens for one minute. */
export const DEFAULT_TOKEN_TTL_MS = 60_000;
/** A bound on outstanding requests so a flood of RPCs cannot grow memory without limit. */
export const DEFAULT_MAX_TOKENS = 4096;

interface Entry<T> {
  value: T;
  expiresAt: number;
}

export class TokenStore<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs = DEFAULT_TOKEN_TTL_MS,
    private readonly maxTokens = DEFAULT_MAX_TOKENS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores a request and returns its token: 32 random bytes, URL-safe base64. */
  insert(value: T): string {
    this.evictExpired();
    if (this.entries.size >= this.maxTokens) {
      // Oldest first (Map keeps insertion order): the one closest to expiring anyway.
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    const token = randomBytes(32).toString('base64url');
    this.entries.set(token, { value, expiresAt: this.now() + this.ttlMs });
    return token;
  }

  /** Takes the request out: undefined when the token is unknown, used or expired. */
  consume(token: string): T | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    if (entry.expiresAt <= this.now()) return undefined;
    return entry.value;
  }

  get size(): number {
    this.evictExpired();
    return this.entries.size;
  }

  private evictExpired(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) {
      // Insertion order is expiry order (one TTL for all), so the first live entry ends the scan.
      if (entry.expiresAt > now) break;
      this.entries.delete(token);
    }
  }
}
