import { describe, expect, it } from 'vitest';
import { REMOTE_COMMAND_V2, REMOTE_COMMAND_V4 } from './constants.js';
import { encodeExecStatus } from './exec-status.js';

describe('exec status on the error stream', () => {
  it('v4: metav1.Status JSON with Go field order for success, exit codes and internal errors', () => {
    expect(encodeExecStatus(REMOTE_COMMAND_V4, { exitCode: 0 }).toString()).toBe('{"metadata":{},"status":"Success"}');
    expect(encodeExecStatus(REMOTE_COMMAND_V4, { exitCode: 137, description: 'command killed' }).toString()).toBe(
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command killed",' +
        '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"137"}]}}');
    expect(encodeExecStatus(REMOTE_COMMAND_V4, { error: 'boom' }).toString()).toBe(
      '{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: boom",' +
        '"reason":"InternalError","details":{"causes":[{"message":"error executing command in container: boom"}]},"code":500}');
  });

  it('v1-v3: the message as plain text, nothing on success', () => {
    expect(encodeExecStatus(REMOTE_COMMAND_V2, { exitCode: 0 }).length).toBe(0);
    expect(encodeExecStatus(REMOTE_COMMAND_V2, { exitCode: 2 }).toString()).toBe('command terminated with non-zero exit code: exit status 2');
  });

  it('refuses a non-integer exit code', () => {
    expect(() => encodeExecStatus(REMOTE_COMMAND_V4, { exitCode: 1.5 })).toThrow(RangeError);
  });
});
