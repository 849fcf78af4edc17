import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ResourceExhaustedError } from '../../errors.js';
import { TokenStore, type TokenStoreOptions } from './token-store.js';

interface Req {
  target: string;
  size?: number;
}

const names = { maxTokens: 'limits.max_stream_tokens', maxTokensPerTarget: 'limits.max_stream_tokens_per_target' };

function store(opts: Partial<TokenStoreOptions<Req>> = {}): TokenStore<Req> {
  return new TokenStore<Req>({ targetOf: (r) => r.target, sizeOf: (r) => r.size ?? 100, limitNames: names, ...opts });
}

describe('TokenStore', () => {
  it('hands out long random URL-safe tokens that work exactly once', () => {
    const s = store();
    const a = s.insert({ target: 'exec a' });
    const b = s.insert({ target: 'exec b' });
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(s.consume(a)).toEqual({ target: 'exec a' });
    expect(s.consume(a)).toBeUndefined();
    expect(s.consume('not-a-token')).toBeUndefined();
    expect(s.consume(b)).toEqual({ target: 'exec b' });
  });

  it('expires tokens after their time to live', () => {
    let now = 1_000;
    const s = store({ ttlMs: 60_000, now: () => now });
    const early = s.insert({ target: 'c', size: 1 });
    now += 30_000;
    const late = s.insert({ target: 'c', size: 2 });
    now += 30_000; // early is exactly 60 s old
    expect(s.consume(early)).toBeUndefined();
    expect(s.size).toBe(1);
    expect(s.consume(late)).toEqual({ target: 'c', size: 2 });
  });

  it('refuses a new token when a target has its share, and never evicts a live one', () => {
    const s = store({ maxTokensPerTarget: 3 });
    const mine = s.insert({ target: 'container A' });
    const flood = [s.insert({ target: 'container B' }), s.insert({ target: 'container B' }), s.insert({ target: 'container B' })];
    let refused: unknown;
    try {
      s.insert({ target: 'container B' });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ResourceExhaustedError);
    expect((refused as ResourceExhaustedError).grpcCode).toBe(status.RESOURCE_EXHAUSTED);
    expect((refused as Error).message).toMatch(/container B already has 3 unused URLs \(limits\.max_stream_tokens_per_target = 3\)/);
    // Other targets are unaffected; the flood's own tokens and everyone else's still work.
    const other = s.insert({ target: 'container C' });
    expect(s.consume(mine)).toEqual({ target: 'container A' });
    expect(s.consume(other)).toEqual({ target: 'container C' });
    // A used token frees its place in the target's share.
    expect(s.consume(flood[0]!)).toEqual({ target: 'container B' });
    expect(s.insert({ target: 'container B' })).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses beyond the node-wide count, then takes tokens again once some expire', () => {
    let now = 0;
    const s = store({ maxTokens: 4, maxTokensPerTarget: 10, ttlMs: 1000, now: () => now });
    const first = [1, 2, 3, 4].map((i) => s.insert({ target: `c${i}` }));
    expect(() => s.insert({ target: 'c5' })).toThrow(/4 unused URLs on this node \(limits\.max_stream_tokens = 4\)/);
    expect(s.consume(first[0]!)).toEqual({ target: 'c1' });
    s.insert({ target: 'c5' });
    now += 1000;
    expect(s.size).toBe(0);
    for (let i = 0; i < 4; i++) s.insert({ target: 'c6' });
  });

  it('bounds the bytes requests hold, per target and in all', () => {
    const s = store({ maxBytes: 1000, maxBytesPerTarget: 600, maxTokensPerTarget: 100 });
    s.insert({ target: 'a', size: 500 });
    expect(() => s.insert({ target: 'a', size: 200 })).toThrow(/unused URLs for a would hold 700 bytes of requests, more than 600/);
    s.insert({ target: 'b', size: 450 });
    expect(() => s.insert({ target: 'c', size: 100 })).toThrow(/unused URLs would hold 1050 bytes of requests, more than 1000/);
    expect(s.size).toBe(2);
  });
});
