// The container runtimes by RuntimeClass handler name: crib-runtime as "crib", and every
// [runtime.handlers.<name>] of the config. Built once by the daemon and handed to the services.
import { join } from 'node:path';
import { FailedPreconditionError } from '../errors.js';
import type { ContainerRuntime } from './container-runtime.js';
import { MonitoredRuntime } from './monitored-runtime.js';
import { NO_FEATURES, type RuntimeFeatures } from './runtime-features.js';

/** One RuntimeClass handler: its OCI runtime binary and, when configured, its state root. */
export interface RuntimeHandlerSpec {
  binary: string;
  root?: string;
  /** The runtime keeps each container's state in <root>/<id> (crib-runtime does): whether there
   * is any to delete is then known without running it. */
  stateDirPerId?: boolean;
  /** The runtime is crib-runtime: its template mount namespace is made when the daemon starts
   * (MonitoredRuntime.makeMountTemplate). */
  mountTemplate?: boolean;
  /** The runtime is crib-runtime, whose `exec --capture-output` runs an ExecSync with no monitor
   * around it (runtime/exec-sync.ts). */
  captureExec?: boolean;
}

/** Where a handler keeps its runtime state when the config names no root. */
export function defaultRuntimeRoot(stateDir: string, handler: string): string {
  return join(stateDir, handler === 'crib' ? 'runtime' : `runtime-${handler}`);
}

export class RuntimeRegistry {
  /** `templates`: the runtimes whose template mount namespace the daemon made (and removes). */
  constructor(
    private readonly runtimes: ReadonlyMap<string, ContainerRuntime>,
    private readonly templates: readonly MonitoredRuntime[] = [],
  ) {}

  /**
   * A MonitoredRuntime per handler, each with its own state root (the configured one, else one
   * under the state dir), its features probed, crib-runtime's template mount namespace made.
   */
  static async open(handlers: ReadonlyMap<string, RuntimeHandlerSpec>, stateDir: string): Promise<RuntimeRegistry> {
    const runtimes = new Map<string, MonitoredRuntime>();
    const templates: MonitoredRuntime[] = [];
    for (const [name, { binary, root, stateDirPerId, mountTemplate, captureExec }] of handlers) {
      const rt = new MonitoredRuntime(name, binary, root ?? defaultRuntimeRoot(stateDir, name), { stateDirPerId, captureExec });
      runtimes.set(name, rt);
      if (mountTemplate) templates.push(rt);
    }
    await Promise.all([...[...runtimes.values()].map((rt) => rt.probeFeatures()), ...templates.map((rt) => rt.makeMountTemplate())]);
    return new RuntimeRegistry(runtimes, templates);
  }

  /** When the daemon stops, after its last container was created: unpins the templates. */
  async close(): Promise<void> {
    await Promise.all(this.templates.map((rt) => rt.removeMountTemplate()));
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
