// Run on the host by deploy/test-cgroup2.sh before the guest boots: builds the C test helpers the
// guest suites use into DIR, because compiling them inside the emulated guest takes a minute and
// here a few seconds. The guest finds them through CRIB_CGROUP_DRIVER and CRIB_TEST_HELPERS_DIR.
//   tsx test-guest/prebuild-helpers.ts DIR
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildDriver } from '../native/test/support/cgroup-driver.js';
import { buildHelper } from '../native/test/support/runtime-runner.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: prebuild-helpers.ts DIR');
mkdirSync(dir, { recursive: true });
delete process.env.CRIB_CGROUP_DRIVER;
delete process.env.CRIB_TEST_HELPERS_DIR;
const driver = await buildDriver();
copyFileSync(driver.bin, join(dir, 'cgroup-driver'));
driver.cleanup();
buildHelper('runtime-reaper', dir);
