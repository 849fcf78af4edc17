import { describe, expect, it } from 'vitest';
import { TokenStore } from './token-store.js';

describe('TokenStore', () => {
  it('hands out long random URL-safe tokens that work exactly once', () => {
    const store = new TokenStore<string>();
    const a = store.insert('exec a');
    const b = store.insert('exec b');
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(store.consume(a)).toBe('exec a');
    expect(store.consume(a)).toBeUndefined();
    expect(store.consume('not-a-token')).toBeUndefined();
    expect(store.consume(b)).toBe('exec b');
  });

  it('expires tokens after their time to live', () => {
    let now = 1_000;
    const store = new TokenStore<number>(60_000, 100, () => now);
    const early = store.insert(1);
    now += 30_000;
    const late = store.insert(2);
    now += 30_000; // early is exactly 60 s old
    expect(store.consume(early)).toBeUndefined();
    expect(store.size).toBe(1);
    expect(store.consume(late)).toBe(2);
  });

  it('bounds the number of outstanding tokens, dropping the oldest', () => {
    const store = new TokenStore<number>(60_000, 3);
    const tokens = [1, 2, 3, 4].map((v) => store.insert(v));
    expect(store.size).toBe(3);
    expect(store.consume(tokens[0]!)).toBeUndefined();
    expect(store.consume(tokens[3]!)).toBe(4);
  });
});
