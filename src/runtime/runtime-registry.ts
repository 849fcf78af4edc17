// The container runtimes by RuntimeClass handler name: crib-runtime as "crib", and every
// [runtime.handlers.<name>] of the config. Built once by the daemon and handed to the services.
import { join } from 'node:path';
import { FailedPreconditionError } from '../errors.js';
import type { ContainerRuntime } from './container-runtime.js';
import { MonitoredRuntime } from './monitored-runtime.js';
import { NO_FEATURES, type RuntimeFeatures } from './runtime-features.js';

export class RuntimeRegistry {
  constructor(private readonly runtimes: ReadonlyMap<string, ContainerRuntime>) {}

  /**
   * A MonitoredRuntime per handler (name -> runtime binary), each with its own root under the
   * state dir, its features probed.
   */
  static async open(handlers: ReadonlyMap<string, string>, stateDir: string): Promise<RuntimeRegistry> {
    const runtimes = new Map<string, MonitoredRuntime>();
    for (const [name, binary] of handlers) {
      runtimes.set(name, new MonitoredRuntime(name, binary, join(stateDir, name === 'crib' ? 'runtime' : `runtime-${name}`)));
    }
    await Promise.all([...runtimes.values()].map((rt) => rt.probeFeatures()));
    return new RuntimeRegistry(runtimes);
  }

  /** The runtime of a handler; a handler that is not configured is the caller's precondition. */
  get(handler: string): ContainerRuntime {
    const rt = this.runtimes.get(handler);
    if (!rt) throw new FailedPreconditionError(`runtime handler "${handler}" is not configured (have: ${this.names().join(', ')})`);
    return rt;
  }

  find(handler: string): ContainerRuntime | undefined {
    return this.runtimes.get(handler);
  }

  names(): string[] {
    return [...this.runtimes.keys()];
  }

  features(handler: string): RuntimeFeatures {
    return this.runtimes.get(handler)?.features ?? NO_FEATURES;
  }
}
