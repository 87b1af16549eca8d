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
[ -f "boards/$board.site.toml" ] && site=(--site "boards/$board.site.toml")
exec .venv/bin/switchboard --sim --board "$board" "${site[@]}" "$@"
