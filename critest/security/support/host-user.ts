// An unprivileged host user trying things for real: one node process, run as nobody through
// setpriv (util-linux) with no supplementary groups, performs a list of file-system attempts and
// reports each outcome with its errno code. The same list run as root shows the targets exist
// and work, so a refusal proves a permission, not an absence.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NOBODY = 65534;

export type Attempt =
  /** Run a program; out is its trimmed stdout. */
  | { kind: 'exec'; path: string }
  /** Create a new file (O_EXCL) and write to it. */
  | { kind: 'create'; path: string }
  | { kind: 'list'; path: string }
  /** stat(2): succeeds whenever every directory on the way can be searched. */
  | { kind: 'stat'; path: string }
  /** open(O_WRONLY | O_NONBLOCK): a fifo's writer end. */
  | { kind: 'open-write'; path: string }
  /** connect(2) to a unix stream socket (through an O_PATH fd of its dir: sun_path is short). */
  | { kind: 'connect'; path: string }
  /** Read a file; out is its content. */
  | { kind: 'read'; path: string };

export type Outcome = { ok: true; out?: string } | { ok: false; code: string };

// Plain JavaScript run with `node -e`: nothing to load from a checkout the user may not read.
const PROBE = `
const fs = require('node:fs'), net = require('node:net'), cp = require('node:child_process');
const { basename, dirname } = require('node:path');
const attempt = async (a) => {
  switch (a.kind) {
    case 'exec': return cp.execFileSync(a.path, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    case 'create': return void fs.writeFileSync(a.path, 'planted by a host user\\n', { flag: 'wx' });
    case 'list': return void fs.readdirSync(a.path);
    case 'stat': return void fs.statSync(a.path);
    case 'open-write': return void fs.closeSync(fs.openSync(a.path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    case 'connect': {
      const O_PATH = 0o10000000;
      const dir = fs.openSync(dirname(a.path), O_PATH | fs.constants.O_DIRECTORY);
      const name = '/proc/self/fd/' + dir + '/' + basename(a.path);
      return new Promise((resolve, reject) => {
        const s = net.connect(name, () => { s.destroy(); resolve(); });
        s.on('error', reject);
      }).finally(() => fs.closeSync(dir));
    }
    case 'read': return fs.readFileSync(a.path, 'utf8');
  }
  throw new Error('unknown attempt ' + a.kind);
};
(async () => {
  const out = [];
  for (const a of JSON.parse(process.argv[1])) {
    try {
      const r = await attempt(a);
      out.push(r === undefined ? { ok: true } : { ok: true, out: r });
    } catch (e) {
      out.push({ ok: false, code: e.code || String(e) });
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

async function probe(prefix: string[], attempts: Attempt[]): Promise<Outcome[]> {
  const argv = [...prefix, process.execPath, '-e', PROBE, JSON.stringify(attempts)];
  const { stdout } = await run(argv[0]!, argv.slice(1), { cwd: '/', maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as Outcome[];
}

/** The attempts as an unprivileged host user: uid/gid nobody, no supplementary groups. */
export function asHostUser(attempts: Attempt[], uid = NOBODY): Promise<Outcome[]> {
  return probe(['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'], attempts);
}

/** The same attempts as root (this test process's user). */
export function asRoot(attempts: Attempt[]): Promise<Outcome[]> {
  return probe([], attempts);
}
