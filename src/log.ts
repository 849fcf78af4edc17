// Structured JSON logging (pino). Every line about a pod or container carries its id, which is
// what child loggers are for: log.child({ pod: id }).
import { pino, type Logger } from 'pino';

export type { Logger };

const level = process.env.CRIB_LOG_LEVEL ?? 'info';

/** The process-wide root logger; the daemon may lower or raise its level from config. */
export const log: Logger = pino({
  level,
  base: { svc: 'crib' },
  timestamp: pino.stdTimeFunctions.isoTime,
  // Credentials must never be logged; these paths cover every shape they travel in.
  redact: {
    paths: ['auth', '*.auth', 'password', '*.password', 'authorization', '*.authorization',
      'identityToken', '*.identityToken', 'registryToken', '*.registryToken',
      'headers.authorization', '*.headers.authorization'],
    censor: '[redacted]',
  },
});
