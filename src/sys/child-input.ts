// Feeding a helper process its input on stdin. A helper may exit without reading it all (a CNI
// plugin refusing a DEL, a runtime failing on its arguments): the write then fails with EPIPE,
// and an 'error' nobody listens for would take the whole daemon down. The helper's exit status
// and output say what went wrong; the failed write adds nothing to that.
import type { ChildProcess } from 'node:child_process';

export function endChildInput(child: ChildProcess, input: string | Buffer): void {
  const stdin = child.stdin;
  if (!stdin) return;
  stdin.on('error', () => undefined);
  stdin.end(input);
}
