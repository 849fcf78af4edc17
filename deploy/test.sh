#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian 12 machine (as root): installs what the
# tests need, builds crib, runs the unit, native and end-to-end suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh --test
npm run build
exec npx vitest run "$@"
