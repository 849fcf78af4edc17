// Benchmark (not a test): RemoveImage and PullImage of busybox (one layer), A/B between two builds.
//   npx tsx bench/image-ab.ts    (BENCH_N=20 rounds; BENCH_BASE=/path/to/another/checkout, built:
//                                 its daemon runs beside this one's, rounds alternating which goes
//                                 first, so both see the same background load)
// A round, per daemon: RemoveImage of the image the harness pulled, then PullImage of it again.
import { runLifecycleAB } from './lifecycle-ab.js';

await runLifecycleAB({
  ops: ['RemoveImage', 'PullImage'] as const,
  title: 'remove and pull again one image per round',
  async round(d, image, _n, time) {
    await time('RemoveImage', () => d.cri.image.RemoveImage({ image: { image } }));
    await time('PullImage', () => d.cri.image.PullImage({ image: { image } }));
  },
});
