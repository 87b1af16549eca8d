#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine (system packages
# included), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
