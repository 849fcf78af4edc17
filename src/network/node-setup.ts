// The node's own network setup and clean-up (the bridge, its ports at start-up, the nftables
// table) runs `ip` and `nft` once per daemon, never on a pod's RPC path (the pod path has only
// crib-pinns: critest/network-spawns.test.ts). Those forks stay on the event loop's thread, so a
// daemon with no pod yet does not start the spawn thread for them (sys/command.ts).
import type { RunOptions } from '../sys/command.js';

export const NODE_SETUP: RunOptions = { onEventLoop: true };
