// `crib logs`: reads the container's CRI log file (ContainerStatus's logPath) on this host, as
// crictl does. Each line is "<RFC3339Nano time> <stdout|stderr> <P|F> <text>"; P marks a partial
// line continued by the next. stdout lines go to stdout, stderr lines to stderr.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { CliError, UsageError } from '../cli-error.js';
import type { Context } from '../context.js';

export interface LogsOptions {
  follow?: boolean;
  tail?: string;
  since?: string;
  timestamps?: boolean;
}

interface LogLine {
  time: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  text: string;
}

export function parseLogLine(line: string): LogLine | undefined {
  const m = /^(\S+) (stdout|stderr) (P|F)(?: (.*))?$/s.exec(line);
  if (!m) return undefined;
  return { time: m[1]!, stream: m[2] as 'stdout' | 'stderr', partial: m[3] === 'P', text: m[4] ?? '' };
}

/** --since: a duration back from now ("10s", "5m", "2h") or an RFC 3339 time. */
export function parseSince(text: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(text);
  if (m) return now - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`--since "${text}" is neither a duration like "10s", "5m", "2h" nor an RFC 3339 time.`);
  return t;
}

function parseTail(text: string | undefined): number | undefined {
  if (text === undefined || text === '-1') return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`--tail "${text}" must be a number of lines (or -1 for all).`);
  return Number(text);
}

/** Writes parsed lines to stdout/stderr, gluing partial lines. */
class LogPrinter {
  constructor(private readonly sinceMs: number | undefined, private readonly timestamps: boolean) {}

  write(line: LogLine): void {
    if (this.sinceMs !== undefined && Date.parse(line.time) < this.sinceMs) return;
    const out = line.stream === 'stderr' ? process.stderr : process.stdout;
    out.write(`${this.timestamps ? `${line.time} ` : ''}${line.text}${line.partial ? '' : '\n'}`);
  }
}

/** The pieces making up the last n whole lines (a partial piece belongs to the line that ends it). */
export function lastLines(lines: LogLine[], n: number): LogLine[] {
  if (n === 0) return [];
  let full = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i]!.partial && ++full > n) return lines.slice(i + 1);
  }
  return lines;
}

/** Complete lines of a file from `offset`, and where the unread rest begins. */
async function readLines(fh: FileHandle, offset: number): Promise<{ lines: string[]; offset: number }> {
  const { size } = await fh.stat();
  if (size <= offset) return { lines: [], offset };
  const buf = Buffer.alloc(Math.min(size - offset, 8 * 1024 * 1024));
  const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
  const text = buf.subarray(0, bytesRead).toString('utf8');
  const end = text.lastIndexOf('\n');
  if (end < 0) return { lines: [], offset };
  return { lines: text.slice(0, end).split('\n'), offset: offset + Buffer.byteLength(text.slice(0, end + 1)) };
}

export async function logs(ctx: Context, id: string, opts: LogsOptions): Promise<void> {
  const cri = await ctx.cri();
  const containerId = await ctx.containerId(id);
  const { status } = await cri.runtime.ContainerStatus({ containerId }, ctx.call);
  const logPath: string = status?.logPath ?? '';
  if (!logPath) throw new CliError(`container ${containerId.slice(0, 13)} has no log file: its config set no log_path (and its pod no log_directory).`);
  const tail = parseTail(opts.tail);
  const printer = new LogPrinter(opts.since === undefined ? undefined : parseSince(opts.since), opts.timestamps ?? false);
  let fh: FileHandle;
  try {
    fh = await open(logPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError(`the log file ${logPath} of container ${containerId.slice(0, 13)} does not exist (yet): has the container started?`);
    }
    throw err;
  }
  let offset = 0;
  let ino = (await fh.stat()).ino;
  try {
    const first = await readLines(fh, 0);
    offset = first.offset;
    let parsed = first.lines.map(parseLogLine).filter((l): l is LogLine => l !== undefined);
    if (tail !== undefined) parsed = lastLines(parsed, tail);
    for (const l of parsed) printer.write(l);
    if (!opts.follow) return;
    // Follow until the container is no longer running; a rotated file (new inode) is reopened.
    let lastCheck = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const now = await stat(logPath).catch(() => undefined);
      if (now && now.ino !== ino) {
        const more = await readLines(fh, offset);
        for (const l of more.lines) {
          const p = parseLogLine(l);
          if (p) printer.write(p);
        }
        await fh.close();
        fh = await open(logPath, 'r');
        ino = now.ino;
        offset = 0;
      }
      const more = await readLines(fh, offset);
      offset = more.offset;
      for (const l of more.lines) {
        const p = parseLogLine(l);
        if (p) printer.write(p);
      }
      if (Date.now() - lastCheck > 1000) {
        lastCheck = Date.now();
        const st = (await cri.runtime.ContainerStatus({ containerId }, ctx.call)).status;
        if (st?.state !== 'CONTAINER_RUNNING') {
          const rest = await readLines(fh, offset);
          for (const l of rest.lines) {
            const p = parseLogLine(l);
            if (p) printer.write(p);
          }
          return;
        }
      }
    }
  } finally {
    await fh.close();
  }
}
