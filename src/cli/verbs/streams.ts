// Verbs that stream through the CRI streaming URL: exec, attach, port-forward. The command's
// exit code becomes crib's, so `crib exec c false; echo $?` prints 1 as a shell would.
import { createServer, type Socket } from 'node:net';
import { CliError, UsageError } from '../cli-error.js';
import type { Context } from '../context.js';
import { print } from '../output.js';

export interface ExecOptions {
  interactive?: boolean;
  tty?: boolean;
  sync?: boolean;
  timeout?: string;
}

/** A local terminal for -t: raw mode while the session runs, and its size as it changes. */
function terminalIo(tty: boolean) {
  const stdin = process.stdin;
  const raw = tty && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  return {
    terminalSize: () => (tty && process.stdout.isTTY ? { width: process.stdout.columns, height: process.stdout.rows } : undefined),
    onResize: (listener: () => void) => {
      process.stdout.on('resize', listener);
      return () => process.stdout.off('resize', listener);
    },
    restore: () => {
      if (raw) stdin.setRawMode(false);
    },
  };
}

async function runSession(url: string, opts: { interactive?: boolean; tty?: boolean }): Promise<number> {
  const { runRemoteCommand } = await import('../../client/stream-client.js');
  const term = terminalIo(opts.tty ?? false);
  try {
    const outcome = await runRemoteCommand(url, {
      stdin: opts.interactive ? process.stdin : undefined,
      stdout: process.stdout,
      stderr: opts.tty ? undefined : process.stderr,
      terminalSize: term.terminalSize,
      onResize: term.onResize,
    });
    if ('error' in outcome) throw new CliError(outcome.error);
    return outcome.exitCode;
  } finally {
    term.restore();
    if (opts.interactive) process.stdin.pause();
  }
}

export async function exec(ctx: Context, id: string, cmd: string[], opts: ExecOptions): Promise<number> {
  if (cmd.length === 0) throw new UsageError('give the command to run, e.g. "crib exec CONTAINER ls /".');
  const containerId = await ctx.containerId(id);
  const cri = await ctx.cri();
  if (opts.sync) {
    if (opts.interactive || opts.tty) throw new UsageError('--sync runs without stdin or a terminal: drop -i/-t, or drop --sync.');
    const timeout = Number(opts.timeout ?? 0);
    if (!Number.isInteger(timeout) || timeout < 0) throw new UsageError(`--timeout "${opts.timeout}" must be a whole number of seconds.`);
    const res = await cri.runtime.ExecSync({ containerId, cmd, timeout: String(timeout) }, timeout > 0 ? { deadline: Date.now() + timeout * 1000 + 10_000 } : {});
    process.stdout.write(res.stdout as Buffer);
    process.stderr.write(res.stderr as Buffer);
    return res.exitCode as number;
  }
  const { url } = await cri.runtime.Exec({
    containerId, cmd, tty: opts.tty ?? false, stdin: opts.interactive ?? false, stdout: true, stderr: !opts.tty,
  }, ctx.call);
  return runSession(url as string, opts);
}

export async function attach(ctx: Context, id: string, opts: { interactive?: boolean; tty?: boolean }): Promise<number> {
  const containerId = await ctx.containerId(id);
  const cri = await ctx.cri();
  const { url } = await cri.runtime.Attach({
    containerId, tty: opts.tty ?? false, stdin: opts.interactive ?? false, stdout: true, stderr: !opts.tty,
  }, ctx.call);
  return runSession(url as string, opts);
}

/** "8080:80" -> local 8080, pod 80; "80" -> both 80; ":80" -> a free local port. */
export function parsePortSpec(spec: string): { local: number; remote: number } {
  const m = /^(?:(\d*):)?(\d+)$/.exec(spec);
  const remote = Number(m?.[2]);
  const local = m?.[1] === undefined ? remote : m[1] === '' ? 0 : Number(m[1]);
  if (!m || remote < 1 || remote > 65535 || local > 65535) {
    throw new UsageError(`"${spec}" is not a port mapping: use [LOCAL_PORT:]POD_PORT, ports in 1..65535.`);
  }
  return { local, remote };
}

/** Serve each local port until interrupted; every connection gets its own single-use URL. */
export async function portForward(ctx: Context, pod: string, specs: string[], opts: { bind?: string }): Promise<void> {
  if (specs.length === 0) throw new UsageError('give at least one port, e.g. "crib port-forward POD 8080:80".');
  const mappings = specs.map(parsePortSpec);
  const podSandboxId = await ctx.podId(pod);
  const cri = await ctx.cri();
  const { forwardConnection } = await import('../../client/stream-client.js');
  const host = opts.bind ?? '127.0.0.1';
  const servers = await Promise.all(mappings.map(({ local, remote }) => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    // Half-open: a client that ends its request (HTTP/1.0, `nc -q`) still reads the reply.
    const server = createServer({ allowHalfOpen: true }, (sock: Socket) => {
      void (async () => {
        try {
          const { url } = await cri.runtime.PortForward({ podSandboxId, port: [remote] }, ctx.call);
          await forwardConnection(url as string, remote, sock);
        } catch (err) {
          process.stderr.write(`crib: forwarding a connection to port ${remote} failed: ${(err as Error).message}\n`);
          sock.destroy();
        }
      })();
    });
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new CliError(`cannot listen on ${host}:${local}: ${err.code === 'EADDRINUSE' ? 'the port is in use; pick another local port' : err.message}.`)));
    server.listen(local, host, () => {
      const addr = server.address();
      print(`Forwarding from ${host}:${typeof addr === 'object' && addr ? addr.port : local} -> ${remote}\n`);
      resolve(server);
    });
  })));
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  for (const s of servers) s.close();
}
