#!/usr/bin/env bash
# Builds crib if needed and runs the daemon in the foreground (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
npm run build
exec node dist/cli.js daemon "$@"
