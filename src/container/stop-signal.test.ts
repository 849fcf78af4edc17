import { describe, expect, it } from 'vitest';
import { chosenStopSignal, criSignalName, killSignal, reportedStopSignal, signalNumber } from './stop-signal.js';

describe('stop signal', () => {
  it('reads the CRI names and the spellings an image STOPSIGNAL uses', () => {
    const cases: [string, number | undefined][] = [
      ['SIGTERM', 15], ['TERM', 15], ['sigquit', 3], ['9', 9], ['SIGCLD', 17], ['SIGPOLL', 29], ['SIGIOT', 6],
      ['SIGRTMIN', 34], ['SIGRTMINPLUS3', 37], ['SIGRTMIN+3', 37], ['RTMAX-2', 62], ['SIGRTMAXMINUS14', 50], ['SIGRTMAX', 64],
      ['SIGNOPE', undefined], ['0', undefined], ['65', undefined], ['SIGRTMAX+1', undefined],
    ];
    for (const [name, num] of cases) expect(signalNumber(name), name).toBe(num);
  });

  it('names every number 1..64 with a CRI enum name that reads back to it', () => {
    for (let n = 1; n <= 64; n++) {
      if (n === 32 || n === 33) continue; // glibc's own, never a container's stop signal
      const name = criSignalName(n);
      expect(name, String(n)).toMatch(/^SIG[A-Z0-9]+$/);
      expect(signalNumber(name!), name).toBe(n);
    }
  });

  it('prefers the CRI stop_signal, then the image, then SIGTERM', () => {
    expect(chosenStopSignal('SIGUSR1', 'SIGQUIT')).toBe('SIGUSR1');
    expect(chosenStopSignal('RUNTIME_DEFAULT', 'SIGQUIT')).toBe('SIGQUIT');
    expect(chosenStopSignal('RUNTIME_DEFAULT', undefined)).toBeUndefined();
    expect(reportedStopSignal(undefined)).toBe('SIGTERM');
    expect(reportedStopSignal('RTMIN+1')).toBe('SIGRTMINPLUS1');
    expect(reportedStopSignal('SIGCLD')).toBe('SIGCHLD');
    expect(reportedStopSignal('BOGUS')).toBe('RUNTIME_DEFAULT');
  });

  it('gives kill a number every runtime understands', () => {
    expect(killSignal(undefined)).toBe('TERM');
    expect(killSignal('SIGRTMINPLUS2')).toBe('36');
    expect(killSignal('QUIT')).toBe('3');
    expect(killSignal('BOGUS')).toBe('BOGUS');
  });
});
