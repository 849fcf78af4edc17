import { describe, expect, it } from 'vitest';
import { REMOTE_COMMAND_V1, REMOTE_COMMAND_V3, REMOTE_COMMAND_V4, SUPPORTED_REMOTE_COMMAND_PROTOCOLS } from './constants.js';
import { UpgradeRefusedError, negotiateSubprotocol, parseProtocolList } from './negotiate.js';

describe('negotiateSubprotocol', () => {
  it('takes the first client protocol the server supports, from repeated or comma-joined headers', () => {
    expect(negotiateSubprotocol([REMOTE_COMMAND_V4, REMOTE_COMMAND_V3], SUPPORTED_REMOTE_COMMAND_PROTOCOLS)).toBe(REMOTE_COMMAND_V4);
    expect(negotiateSubprotocol('v5.channel.k8s.io, v4.channel.k8s.io,v3.channel.k8s.io', SUPPORTED_REMOTE_COMMAND_PROTOCOLS)).toBe(REMOTE_COMMAND_V4);
    expect(negotiateSubprotocol([REMOTE_COMMAND_V1, REMOTE_COMMAND_V4], SUPPORTED_REMOTE_COMMAND_PROTOCOLS)).toBe(REMOTE_COMMAND_V1);
  });

  it('refuses with 400 when nothing is requested and 403 (listing both sides) when nothing matches', () => {
    for (const none of [undefined, '', [' , ']]) {
      try {
        negotiateSubprotocol(none, SUPPORTED_REMOTE_COMMAND_PROTOCOLS);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(UpgradeRefusedError);
        expect((err as UpgradeRefusedError).httpStatus).toBe(400);
      }
    }
    try {
      negotiateSubprotocol(['v9.channel.k8s.io'], ['portforward.k8s.io']);
      expect.unreachable();
    } catch (err) {
      const e = err as UpgradeRefusedError;
      expect(e.httpStatus).toBe(403);
      expect(e.acceptedProtocols).toEqual(['portforward.k8s.io']);
      expect(e.message).toBe('unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io], server accepts [portforward.k8s.io]');
    }
  });

  it('parses protocol lists, dropping blanks and keeping order', () => {
    expect(parseProtocolList(['a, b', 'c', ' ,d '])).toEqual(['a', 'b', 'c', 'd']);
  });
});
