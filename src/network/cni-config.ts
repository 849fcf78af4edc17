// CNI network configuration, found the way kubelet-era runtimes do: the first file (by name) in
// the config dir ending in .conflist, .conf or .json. A single-plugin .conf becomes a list of one.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, errnoCode } from '../errors.js';

export interface CniPluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniNetworkConfigList {
  cniVersion: string;
  name: string;
  plugins: CniPluginConf[];
  /** Where it was read from, for messages. */
  source: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function parseCniConfig(text: string, source: string): CniNetworkConfigList {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidArgumentError(`CNI config ${source} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null) throw new InvalidArgumentError(`CNI config ${source} is not a JSON object`);
  const cniVersion = raw.cniVersion;
  const name = raw.name;
  if (typeof cniVersion !== 'string' || !/^\d+\.\d+\.\d+$/.test(cniVersion))
    throw new InvalidArgumentError(`CNI config ${source}: "cniVersion" must be a version like "1.0.0"`);
  if (typeof name !== 'string' || !NAME_RE.test(name))
    throw new InvalidArgumentError(`CNI config ${source}: "name" must be a network name`);
  const plugins = Array.isArray(raw.plugins) ? (raw.plugins as unknown[]) : raw.type !== undefined ? [raw] : undefined;
  if (!plugins || plugins.length === 0) throw new InvalidArgumentError(`CNI config ${source}: no "plugins" (or "type") given`);
  const checked = plugins.map((p, i) => {
    const plugin = p as CniPluginConf;
    if (typeof plugin !== 'object' || plugin === null || typeof plugin.type !== 'string' || !NAME_RE.test(plugin.type))
      throw new InvalidArgumentError(`CNI config ${source}: plugin ${i} has no valid "type"`);
    return plugin;
  });
  return { cniVersion, name, plugins: checked, source };
}

/** The network crib uses: the first config file in dir. */
export async function loadCniConfig(dir: string): Promise<CniNetworkConfigList> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new FailedPreconditionError(`CNI config dir ${dir} does not exist: no pod network configured`);
    throw err;
  }
  const file = names.filter((n) => /\.(conflist|conf|json)$/.test(n)).sort()[0];
  if (!file) throw new FailedPreconditionError(`no CNI network config (*.conflist, *.conf, *.json) in ${dir}`);
  const path = join(dir, file);
  return parseCniConfig(await readFile(path, 'utf8'), path);
}
