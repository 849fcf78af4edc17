// Kubernetes resource quantities ("500m", "1.5", "128Mi", "1G", "2e3") as the numbers kubelet
// works with: CPU in millicores, memory in bytes. Only the forms the API server accepts parse;
// anything else is an error naming the field, because a misread limit is a wrong cgroup.
import { InvalidArgumentError } from '../errors.js';

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** The value of a quantity as a JS number (exact for every size a node can have). */
export function parseQuantity(text: string | number, field: string): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0) throw new InvalidArgumentError(`${field}: ${text} is not a non-negative quantity`);
    return text;
  }
  const m = /^([+]?[0-9]*\.?[0-9]+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?[0-9]+)|(n|u|m|k|M|G|T|P|E)?)$/.exec(text.trim());
  if (!m || text.length > 64) {
    throw new InvalidArgumentError(`${field}: "${text}" is not a quantity like "500m", "2", "128Mi" or "1G"`);
  }
  const base = Number(m[1]);
  if (m[2]) return base * BINARY[m[2]]!;
  if (m[3]) return base * 10 ** Number(m[3].slice(1));
  return base * DECIMAL[m[4] ?? '']!;
}

/** CPU in millicores, rounded up as the API does (a quantity is never rounded down to zero). */
export function milliCpu(text: string | number, field: string): number {
  return Math.ceil(Math.round(parseQuantity(text, field) * 1e6) / 1e3);
}

/** Memory in bytes, rounded up to a whole byte. */
export function memoryBytes(text: string | number, field: string): number {
  return Math.ceil(parseQuantity(text, field));
}
