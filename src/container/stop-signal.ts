// The signal that stops a container: the CRI's stop_signal (KEP-4960) when set, else the
// image's STOPSIGNAL, else SIGTERM. Both spellings are turned into the signal number, which is
// what every runtime's `kill` understands (runc and crib-runtime do not know the CRI's names
// such as "SIGRTMINPLUS3" or "SIGCLD"), and back into the CRI enum name ContainerStatus reports.
import { constants } from 'node:os';

// glibc's SIGRTMIN and SIGRTMAX (the kernel's 32 and 64, less the two glibc keeps), as kubelet
// numbers them for the CRI's SIGRTMIN... names.
const RTMIN = 34;
const RTMAX = 64;

const ALIASES: Record<string, string> = { CLD: 'CHLD', POLL: 'IO', IOT: 'ABRT' };
// The CRI names the node's numbers map back to (one name per number: the primary one).
const PRIMARY = new Map<number, string>();
for (const [name, num] of Object.entries(constants.signals)) {
  const short = name.slice(3);
  if (!(short in ALIASES) && !PRIMARY.has(num)) PRIMARY.set(num, name);
}

/**
 * The number of a signal named as the CRI does (SIGTERM, SIGRTMINPLUS3, SIGRTMAXMINUS2) or as
 * an image's STOPSIGNAL may (SIGTERM, TERM, 15, SIGRTMIN+3, RTMAX-2); undefined if unknown.
 */
export function signalNumber(name: string): number | undefined {
  const s = name.trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return n >= 1 && n <= RTMAX ? n : undefined;
  }
  let short = s.startsWith('SIG') ? s.slice(3) : s;
  const rt = /^RT(MIN|MAX)(?:(PLUS|MINUS|\+|-)(\d+))?$/.exec(short);
  if (rt) {
    const off = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === 'PLUS' || rt[2] === '+' ? 1 : -1);
    const n = (rt[1] === 'MIN' ? RTMIN : RTMAX) + off;
    return n >= RTMIN && n <= RTMAX ? n : undefined;
  }
  short = ALIASES[short] ?? short;
  return (constants.signals as Record<string, number | undefined>)[`SIG${short}`];
}

/** The CRI enum name of a signal number (SIGRTMINPLUS3 style for real-time signals). */
export function criSignalName(num: number): string | undefined {
  if (num === RTMIN) return 'SIGRTMIN';
  if (num === RTMAX) return 'SIGRTMAX';
  if (num > RTMIN && num <= RTMIN + 15) return `SIGRTMINPLUS${num - RTMIN}`;
  if (num > RTMIN + 15 && num < RTMAX) return `SIGRTMAXMINUS${RTMAX - num}`;
  return PRIMARY.get(num);
}

/** The stop signal as a container record keeps it: the CRI's if set, else the image's (may be undefined). */
export function chosenStopSignal(criStopSignal: string | undefined, imageStopSignal: string | undefined): string | undefined {
  return criStopSignal && criStopSignal !== 'RUNTIME_DEFAULT' ? criStopSignal : imageStopSignal || undefined;
}

/** What `kill` is given: TERM by default, the number when a signal is named, the name as written if unknown. */
export function killSignal(stopSignal: string | undefined): string {
  if (!stopSignal) return 'TERM';
  const n = signalNumber(stopSignal);
  return n === undefined ? stopSignal : String(n);
}

/** What ContainerStatus.stop_signal reports: the signal stop sends (SIGTERM by default). */
export function reportedStopSignal(stopSignal: string | undefined): string {
  if (!stopSignal) return 'SIGTERM';
  const n = signalNumber(stopSignal);
  return (n === undefined ? undefined : criSignalName(n)) ?? 'RUNTIME_DEFAULT';
}
