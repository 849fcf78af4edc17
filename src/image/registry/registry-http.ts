// The registry client's HTTP: undici, with one connection pool for verified TLS and one for
// hosts configured insecure. undici is loaded, and the pools made, on the first request (see
// sys/lazy-module.ts): a node that never pulls never pays for them.
import type { Dispatcher } from 'undici';
import { lazyModule } from '../../sys/lazy-module.js';

const undici = lazyModule<typeof import('undici')>('undici');

export class RegistryHttp {
  private pools: { secure: Dispatcher; insecure: Dispatcher } | undefined;

  constructor(private readonly connectTimeoutMs: number) {}

  /** The pool for a request: `insecure` skips TLS verification (hosts configured so only). */
  dispatcher(insecure: boolean): Dispatcher {
    if (!this.pools) {
      const { Agent } = undici();
      const common = { keepAliveTimeout: 10_000, connect: { timeout: this.connectTimeoutMs } };
      this.pools = {
        secure: new Agent(common),
        insecure: new Agent({ ...common, connect: { ...common.connect, rejectUnauthorized: false } }),
      };
    }
    return insecure ? this.pools.insecure : this.pools.secure;
  }

  request(url: URL, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher }): Promise<Dispatcher.ResponseData> {
    return undici().request(url, opts);
  }

  async close(): Promise<void> {
    const pools = this.pools;
    this.pools = undefined;
    if (pools) await Promise.all([pools.secure.close(), pools.insecure.close()]);
  }
}
