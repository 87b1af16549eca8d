#!/usr/bin/env bash
# Set up everything on a fresh Debian machine (first run only), then start the
# daemon on the simulated desk board with its view at http://127.0.0.1:8557/ and
# its telephony on loopback: sip:<line number>@127.0.0.1:5070 rings a line.
# On a Pi with the board wired, drop --sim (or run: .venv/bin/switchboard --board desk).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
board="${BOARD:-desk}"
site=()
# The loopback telephony needs PJSUA2 (a wheel on x86_64; a Pi builds it: see README).
if [ -f "boards/$board.site.toml" ] && .venv/bin/python -c "import pjsua2" 2>/dev/null; then
    site=(--site "boards/$board.site.toml")
fi
exec .venv/bin/switchboard --sim --board "$board" "${site[@]}" "$@"
