import { describe, expect, it } from 'vitest';
import { GRPC_MAX_MESSAGE_BYTES } from './cri-limits.js';
import { EXEC_SYNC_OUTPUT_BUDGET, fitExecOutput } from './exec-output.js';

const buf = (n: number, c = 'a') => Buffer.alloc(n, c);

describe('fitExecOutput', () => {
  it('leaves output that fits alone', () => {
    const r = fitExecOutput(buf(10), buf(20), 100);
    expect([r.stdout.length, r.stderr.length, r.cut]).toEqual([10, 20, false]);
  });

  it('gives a stream under half all it has and the other the rest', () => {
    let r = fitExecOutput(buf(500), buf(7, 'e'), 100);
    expect([r.stdout.length, r.stderr.toString(), r.cut]).toEqual([93, 'eeeeeee', true]);
    r = fitExecOutput(buf(30), buf(500), 100);
    expect([r.stdout.length, r.stderr.length]).toEqual([30, 70]);
  });

  it('splits evenly when both streams are over half, keeping each one\'s head', () => {
    const out = Buffer.concat([Buffer.from('HEAD'), buf(1000)]);
    const r = fitExecOutput(out, buf(1000), 101);
    expect([r.stdout.length, r.stderr.length]).toEqual([50, 51]);
    expect(r.stdout.subarray(0, 4).toString()).toBe('HEAD');
  });

  it('stays under the gRPC message limit with room for the response framing', () => {
    expect(EXEC_SYNC_OUTPUT_BUDGET).toBe(GRPC_MAX_MESSAGE_BYTES - 64 * 1024);
    const r = fitExecOutput(buf(16 * 1024 * 1024), buf(16 * 1024 * 1024));
    expect(r.stdout.length + r.stderr.length).toBe(EXEC_SYNC_OUTPUT_BUDGET);
  });
});
