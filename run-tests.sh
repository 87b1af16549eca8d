#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine (system packages
# included), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
# The suite mostly waits on real peers (SIP timers, paced audio, child processes), so it runs
# in TEST_WORKERS parallel pytest-xdist workers (3 by default, even on 2 cores: 21 min -> 7.5
# min here). Every test takes its own ports, temp dirs and data dirs; TEST_WORKERS=0 runs it
# in one process.
exec .venv/bin/python -m pytest -q -n "${TEST_WORKERS:-3}" "$@"
