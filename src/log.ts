// Structured JSON logging (pino). Every line about a pod or container carries its id, which is
// what child loggers are for: log.child({ pod: id }). Every string that reaches a line (the
// message, each field, an error's message and stack) is cut to a bounded size, because many
// echo client input: no request can make the daemon write a huge line.
import { pino, type Logger, type LoggerOptions } from 'pino';
import { boundStrings, truncateText } from './truncate.js';

export type { Logger };

const level = process.env.CRIB_LOG_LEVEL ?? 'info';
/** An error's message and stack keep more than other fields: a stack is a few KiB. */
const ERR_FIELD_BYTES = 4096;

/** How every crib logger formats, bounds and redacts (exported for its tests). */
export const LOG_OPTIONS = {
  base: { svc: 'crib' },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: {
    log: (obj) => boundStrings(obj) as Record<string, unknown>,
    bindings: (bindings) => boundStrings(bindings) as Record<string, unknown>,
  },
  serializers: {
    msg: (msg: unknown) => (typeof msg === 'string' ? truncateText(msg) : msg),
    // A stack quotes the error's message first: room for both, still bounded.
    err: (err: unknown) => {
      const serialized: unknown = pino.stdSerializers.err(err as Error);
      // The serializer's result has its own prototype: copy it so its strings are bounded too.
      return boundStrings(typeof serialized === 'object' && serialized !== null ? { ...serialized } : serialized, ERR_FIELD_BYTES);
    },
  },
  // Credentials must never be logged; these paths cover every shape they travel in.
  redact: {
    paths: ['auth', '*.auth', 'password', '*.password', 'authorization', '*.authorization',
      'identityToken', '*.identityToken', 'registryToken', '*.registryToken',
      'headers.authorization', '*.headers.authorization'],
    censor: '[redacted]',
  },
} satisfies LoggerOptions;

/** A logger whose children's bindings are bounded like every other field. */
export function boundedLogger(logger: Logger): Logger {
  // pino formats a child's bindings once, without the bindings formatter, so they are bounded
  // here; children inherit this `child` from the root through their prototype.
  const child = logger.child;
  logger.child = function boundedChild(this: Logger, bindings: Record<string, unknown>, options?: object) {
    return child.call(this, boundStrings(bindings) as Record<string, unknown>, options);
  } as Logger['child'];
  return logger;
}

/** The process-wide root logger; the daemon may lower or raise its level from config. */
export const log: Logger = boundedLogger(pino({ level, ...LOG_OPTIONS }));
