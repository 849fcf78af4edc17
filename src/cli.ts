#!/usr/bin/env node
// `crib daemon` runs the CRI server; `crib image import` loads an image archive through it.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { loadConfig, type CribConfig } from './config/config.js';
import { Daemon } from './daemon/daemon.js';
import { importImageViaDaemon } from './client/admin-client.js';
import { log } from './log.js';
import { CRIB_VERSION } from './version.js';

const USAGE = `usage:
  crib daemon [--config FILE] [--listen ADDRESS] [--root DIR] [--state DIR]
  crib image import [--config FILE] [--address ADDRESS] ARCHIVE.tar
  crib version`;

async function configFrom(values: { config?: string; listen?: string; root?: string; state?: string }): Promise<CribConfig> {
  const config = await loadConfig(values.config);
  if (values.listen) config.grpc.address = values.listen;
  if (values.root) config.root = resolve(values.root);
  if (values.state) config.state = resolve(values.state);
  return config;
}

async function runDaemon(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string' }, listen: { type: 'string' }, root: { type: 'string' }, state: { type: 'string' } },
  });
  const daemon = new Daemon(await configFrom(values));
  // The handlers come before start: recovering a busy node takes a while, and a SIGTERM that
  // arrives meanwhile (systemd, a test, an operator's ^C) must end in a clean stop once start
  // has settled, not in the default action that kills the daemon between two writes.
  const started = daemon.start();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    started.then(
      () => daemon.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          process.exit(1);
        },
      ),
      // A start that failed has already cleaned up after itself; the caller reports why.
      () => undefined,
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await started;
}

async function runImage(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'import') throw new Error(`unknown image command "${sub ?? ''}"\n${USAGE}`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { config: { type: 'string' }, address: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new Error(`crib image import takes one archive path\n${USAGE}`);
  const address = values.address ?? (await loadConfig(values.config)).grpc.address;
  const res = await importImageViaDaemon(address, resolve(positionals[0]!));
  for (const img of res.images) console.log(`${img.id} ${img.repoTags.join(' ')}`);
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'daemon':
      return runDaemon(rest);
    case 'image':
      return runImage(rest);
    case 'version':
      console.log(`crib ${CRIB_VERSION}`);
      return;
    default:
      throw new Error(USAGE);
  }
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? (err as Error & { details?: string }).details ?? err.message : String(err);
  console.error(`crib: ${message}`);
  process.exit(1);
});
