#!/usr/bin/env node
// The `crib` command. `crib daemon` runs the CRI server; every other verb is a client of it.
// This file only picks which side to load: the daemon never loads the client verbs (argument
// parsing, tables, progress bars), so its memory does not grow with the CLI.
import { parseArgs } from 'node:util';

const argv = process.argv.slice(2);

function fail(err: unknown): never {
  const message = err instanceof Error ? (err as Error & { details?: string }).details ?? err.message : String(err);
  console.error(`crib: ${message}`);
  process.exit(1);
}

if (argv[0] === 'daemon' && !argv.includes('--help') && !argv.includes('-h')) {
  Promise.resolve()
    .then(async () => {
      const { values } = parseArgs({
        args: argv.slice(1),
        options: { config: { type: 'string' }, listen: { type: 'string' }, root: { type: 'string' }, state: { type: 'string' } },
      });
      // The config first: an invalid one stops `crib daemon` before the re-exec, and a valid
      // one crosses it already checked (daemon/config-handoff.ts).
      const { daemonConfig } = await import('./cli/daemon-config.js');
      const config = await daemonConfig(values);
      // The daemon's V8 and malloc settings (daemon/node-flags.ts): this process becomes `node
      // <flags> cli.js daemon ...`, with its malloc settings in the environment, here, same pid,
      // however it was started.
      const { reexecWithDaemonSettings } = await import('./daemon/node-flags.js');
      reexecWithDaemonSettings(config);
      const { runDaemon } = await import('./cli/daemon-command.js');
      await runDaemon(values, config);
    })
    .catch(fail);
} else {
  import('./cli/program.js').then((m) => m.main(argv)).catch(fail);
}
