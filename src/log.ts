// Structured JSON logging: one line per event, `{"level":30,"time":"…","svc":"crib",…,"msg":"…"}`
// (level numbers 10 trace … 60 fatal). Every line about a pod or container carries its id, which
// is what child loggers are for: log.child({ pod: id }). Every string that reaches a line (the
// message, each field, an error's message and stack) is cut to a bounded size, because many echo
// client input: no request can make the daemon write a huge line. Credentials are redacted.
//
// The daemon's own, not a library's: the JSON logger it used before cost a fresh daemon about a
// MiB of the node binary's pages (its modules, and worker_threads and assert they load;
// bench/daemon-memory.ts, alternated, file-backed RSS 41.0 -> 40.0 MiB) for features the daemon
// never used (transports, worker threads, custom levels).
//
// Lines are written synchronously to the destination (stdout unless told): a line is on its way
// before the call returns, so a crash right after it loses nothing. A destination that does not
// take a line (a pipe whose reader stalls) is retried for at most WRITE_PATIENCE_MS, then the line
// is dropped and counted, and the count is written with the next line that goes through: a stuck
// log reader must never wedge the daemon.
import { writeSync } from 'node:fs';
import { errnoCode } from './errors.js';
import { boundStrings, truncateText } from './truncate.js';
import { isoTime } from './time.js';

export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LevelName = keyof typeof LEVELS;

/** An error's message and stack keep more than other fields: a stack is a few KiB. */
const ERR_FIELD_BYTES = 4096;
/** Causes of an error followed at most. */
const MAX_CAUSES = 4;
/** How long one line may wait for a full destination before it is dropped. */
const WRITE_PATIENCE_MS = 1000;

// Credentials must never be logged: a field by one of these names, at the top of a line or one
// level down, is replaced (and `headers.authorization` likewise).
const SECRET_KEYS = new Set(['auth', 'password', 'authorization', 'identityToken', 'registryToken']);
const REDACTED = '[redacted]';

type LogFn = {
  (msg?: string): void;
  (fields: object | Error, msg?: string): void;
};

export interface Logger {
  /** The family's level (a root logger and all its children share it). */
  level: LevelName;
  isLevelEnabled(level: LevelName): boolean;
  /** A logger whose lines carry `bindings` too. */
  child(bindings: Record<string, unknown>): Logger;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
}

/** Where lines go: the whole line, newline included. */
export type LogSink = (line: string) => void;

export interface LoggerOptions {
  level: LevelName;
  /** Default: written to stdout (fd 1), synchronously. */
  sink?: LogSink;
}

/** A new root logger. */
export function createLogger(opts: LoggerOptions): Logger {
  const family: Family = { level: checkLevel(opts.level), sink: opts.sink ?? fdSink(1) };
  return new JsonLogger(family, ',"svc":"crib"');
}

interface Family {
  level: LevelName;
  sink: LogSink;
}

function checkLevel(level: string): LevelName {
  if (!Object.hasOwn(LEVELS, level)) throw new Error(`log level ${level}: must be one of ${Object.keys(LEVELS).join(', ')}`);
  return level as LevelName;
}

class JsonLogger implements Logger {
  readonly trace: LogFn = (a?: unknown, b?: string) => this.write('trace', a, b);
  readonly debug: LogFn = (a?: unknown, b?: string) => this.write('debug', a, b);
  readonly info: LogFn = (a?: unknown, b?: string) => this.write('info', a, b);
  readonly warn: LogFn = (a?: unknown, b?: string) => this.write('warn', a, b);
  readonly error: LogFn = (a?: unknown, b?: string) => this.write('error', a, b);
  readonly fatal: LogFn = (a?: unknown, b?: string) => this.write('fatal', a, b);

  /** `bindings`: the JSON of this logger's fields, each preceded by a comma. */
  constructor(private readonly family: Family, private readonly bindings: string) {}

  get level(): LevelName {
    return this.family.level;
  }

  set level(level: LevelName) {
    this.family.level = checkLevel(level);
  }

  isLevelEnabled(level: LevelName): boolean {
    return LEVELS[level] >= LEVELS[this.family.level];
  }

  child(bindings: Record<string, unknown>): Logger {
    return new JsonLogger(this.family, this.bindings + fieldsJson(bindings));
  }

  private write(level: LevelName, first: unknown, second: string | undefined): void {
    if (!this.isLevelEnabled(level)) return;
    let fields: unknown;
    let msg: unknown;
    if (typeof first === 'string') msg = first;
    else {
      fields = first instanceof Error ? { err: first } : first;
      // A message given as the fields' `msg` is the line's message.
      msg = second ?? (fields as { msg?: unknown } | undefined)?.msg;
    }
    const msgJson = typeof msg === 'string' ? `,"msg":${JSON.stringify(truncateText(msg))}` : '';
    this.family.sink(`{"level":${LEVELS[level]},"time":"${isoTime()}"${this.bindings}${fieldsJson(fields)}${msgJson}}\n`);
  }
}

/** `fields` as JSON members, each preceded by a comma ('' for none): bounded, errors serialised,
 * credentials redacted. */
function fieldsJson(fields: unknown): string {
  if (fields === null || typeof fields !== 'object') return '';
  const bounded = boundStrings(fields) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(bounded)) {
    if (k === 'msg' || k === 'level' || k === 'time') continue; // the line's own
    out[k] = SECRET_KEYS.has(k) ? REDACTED : k === 'err' ? serializeError(v) : redactBelow(v);
  }
  const json = stringify(out);
  return json.length > 2 ? `,${json.slice(1, -1)}` : '';
}

/** A field's value with the secrets one level down (and in a `headers` object) replaced. */
function redactBelow(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) return v;
  const out: Record<string, unknown> = {};
  for (const [k, inner] of Object.entries(v)) {
    out[k] = SECRET_KEYS.has(k) ? REDACTED : k === 'headers' ? redactHeaders(inner) : inner;
  }
  return out;
}

function redactHeaders(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  return { ...v, ...(Object.hasOwn(v, 'authorization') ? { authorization: REDACTED } : {}) };
}

/** An error as a line shows it: its class, message, stack, own fields (code, errno, path…) and
 * causes, every string bounded. Anything else is left as it is. */
function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { type: err.constructor?.name ?? 'Error', message: err.message, stack: err.stack };
  for (const [k, v] of Object.entries(err)) {
    if (!(k in out) && k !== 'cause') out[k] = SECRET_KEYS.has(k) ? REDACTED : v;
  }
  if (err.cause !== undefined) out.cause = depth < MAX_CAUSES ? serializeError(err.cause, depth + 1) : '[cause]';
  return boundStrings(out, ERR_FIELD_BYTES);
}

/** JSON.stringify, with bigints as numbers' digits and repeated objects (cycles) cut. */
function stringify(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    const seen = new WeakSet<object>();
    return JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v !== null && typeof v === 'object') {
        if (seen.has(v)) return '[Circular]';
        seen.add(v);
      }
      return v;
    });
  }
}

/**
 * A sink writing whole lines to `fd` synchronously, waiting at most `patienceMs` for a full pipe
 * or socket (a non-blocking one answers EAGAIN); a line that cannot go is dropped and counted, and
 * the next line that goes says how many were (`droppedBefore`). Any other failure (EPIPE, EBADF:
 * nobody reads any more) drops the line too: there is nobody to tell.
 */
export function fdSink(fd: number, patienceMs = WRITE_PATIENCE_MS): LogSink {
  let dropped = 0;
  // A dropped line whose first bytes went out: the next line ends it with a newline first, so
  // that line stays whole and parseable on a line of its own.
  let cut = false;
  return (line) => {
    const counted = dropped > 0 ? `${line.slice(0, -2)},"droppedBefore":${dropped}}\n` : line;
    const buf = Buffer.from(cut ? `\n${counted}` : counted);
    const deadline = Date.now() + patienceMs;
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(fd, buf, off);
      } catch (err) {
        if (errnoCode(err) !== 'EAGAIN' || Date.now() > deadline) {
          dropped++;
          if (off > 0) cut = true;
          return;
        }
        Atomics.wait(PAUSE, 0, 0, 5);
      }
    }
    dropped = 0;
    cut = false;
  };
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** The process-wide root logger; the daemon may lower or raise its level from config. */
export const log: Logger = createLogger({ level: checkLevel(process.env.CRIB_LOG_LEVEL ?? 'info') });
