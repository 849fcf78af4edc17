// The config `crib daemon` runs with: the one handed over across the daemon's re-exec
// (daemon/config-handoff.ts), or else the config file read and checked here, with the command
// line's overrides applied. Loads the config parser only in the second case.
import { resolve } from 'node:path';
import type { CribConfig } from '../config/config.js';
import { takeHandedOffConfig } from '../daemon/config-handoff.js';

export interface DaemonOptions {
  config?: string;
  listen?: string;
  root?: string;
  state?: string;
}

export async function daemonConfig(values: DaemonOptions): Promise<CribConfig> {
  // Handed over with the overrides already applied: the exec'd process has the same arguments.
  const handed = takeHandedOffConfig();
  if (handed) return handed;
  const { loadConfig } = await import('../config/config.js');
  const config = await loadConfig(values.config);
  if (values.listen) config.grpc.address = values.listen;
  if (values.root) config.root = resolve(values.root);
  if (values.state) config.state = resolve(values.state);
  return config;
}
