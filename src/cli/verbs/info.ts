// `crib info` and `crib version`: what the daemon says about itself.
import { CRIB_VERSION } from '../../version.js';
import type { Context } from '../context.js';
import { formatData, formatTable, type OutputFormat, parseVerboseInfo, print } from '../output.js';

export async function info(ctx: Context, format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const res = await cri.runtime.Status({ verbose: true }, ctx.call);
  const value = { status: res.status, ...parseVerboseInfo(res.info) };
  if (format === 'table') {
    const rows = (res.status?.conditions ?? []).map((c: { type: string; status: boolean; reason: string; message: string }) => [
      c.type, String(c.status), c.reason, c.message,
    ]);
    print(formatTable(['CONDITION', 'STATUS', 'REASON', 'MESSAGE'], rows));
    return;
  }
  print(formatData(value, format));
}

export async function version(ctx: Context, format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const v = await cri.runtime.Version({ version: 'v1' }, ctx.call);
  if (format === 'table') {
    print(`Version:  ${CRIB_VERSION}\nRuntimeName:  ${v.runtimeName}\nRuntimeVersion:  ${v.runtimeVersion}\nRuntimeApiVersion:  ${v.runtimeApiVersion}\n`);
    return;
  }
  print(formatData({ clientVersion: CRIB_VERSION, ...v }, format));
}
