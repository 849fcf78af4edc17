// The tests' and benchmarks' CRI client is the product's (src/client/cri-client.ts): the tests
// speak gRPC to the daemon exactly as the `crib` command does.
export { criClient, KUBELET_CHANNEL_OPTIONS, type CriClient } from '../src/client/cri-client.js';
