// crictl's filters: --label k=v (repeatable) becomes a CRI label selector; --name is a regular
// expression matched client side against metadata.name, as crictl does.
import { UsageError } from './cli-error.js';

export function labelSelector(labels: string[] | undefined): Record<string, string> | undefined {
  if (!labels || labels.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const l of labels) {
    const i = l.indexOf('=');
    if (i <= 0) throw new UsageError(`--label "${l}" must be KEY=VALUE.`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

export function nameMatcher(pattern: string | undefined): (name: string) => boolean {
  if (!pattern) return () => true;
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    throw new UsageError(`--name "${pattern}" is not a regular expression: ${(err as Error).message}.`);
  }
  return (name) => re.test(name);
}

const CONTAINER_STATES: Record<string, string> = {
  created: 'CONTAINER_CREATED', running: 'CONTAINER_RUNNING', exited: 'CONTAINER_EXITED', unknown: 'CONTAINER_UNKNOWN',
};
const POD_STATES: Record<string, string> = { ready: 'SANDBOX_READY', notready: 'SANDBOX_NOTREADY' };

export function containerState(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const s = CONTAINER_STATES[text.toLowerCase()];
  if (!s) throw new UsageError(`--state "${text}" is not a container state: use ${Object.keys(CONTAINER_STATES).join(', ')}.`);
  return s;
}

export function podState(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const s = POD_STATES[text.toLowerCase()];
  if (!s) throw new UsageError(`--state "${text}" is not a pod state: use ${Object.keys(POD_STATES).join(', ')}.`);
  return s;
}

/** Repeatable options collect into a list. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
