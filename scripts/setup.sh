#!/usr/bin/env bash
# Set up everything the daemon and the tests need on a fresh Debian machine:
# system packages (where missing), then a virtual environment in .venv with
# the project installed in editable mode. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: PortAudio headers (PyAudio builds against them), ALSA tools,
# the SIP peers the tests start on loopback, Chromium for the view's tests, sox,
# DejaVu fonts for the PDF statements (any customer's name prints), espeak-ng
# to speak wake-up and reminder messages given as text.
# Graphviz (dot) for the wiring pictures switchboard-hardware draws.
# systemd (systemd-analyze) and desktop-file-utils check the service's unit and the
# kiosk's autostart entry (scripts/install-pi.sh).
# A C/C++ toolchain, SWIG and OpenSSL/opus headers to build PJSUA2 (scripts/build-pjsua2.sh)
# and, on a Pi with no lgpio wheel for its Python, lgpio.
APT_PACKAGES=(
    python3-venv python3-dev gcc
    build-essential swig libssl-dev libopus-dev
    portaudio19-dev libasound2-plugins alsa-utils sox
    sip-tester kamailio baresip
    kamailio-tls-modules openssl
    chromium
    fonts-dejavu-core espeak-ng
    graphviz
    systemd desktop-file-utils
)

# --print-apt-packages: the list, for scripts/pi-check.sh (it installs them in the emulated
# root while the PJSUA2 wheel cross-compiles beside it).
if [ "${1:-}" = "--print-apt-packages" ]; then
    echo "${APT_PACKAGES[@]}"
    exit 0
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# The stamp holds setup.cfg's hash, not its time: a copied tree (rsync -a, scripts/pi-check.sh)
# keeps the old times.
stamp=.venv/.setup-stamp
want=$(cat setup.cfg pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[telephony,office,test]"
    echo "$want" > "$stamp"
fi

# PJSUA2: the project's own build of pjproject's Python binding (128 calls a process, no
# sound device), the same on every machine. The wheel is cached outside the clone per
# release, configuration, Python and architecture: built once (about 8 min on 2 x86 cores,
# longer on a Pi), then found in seconds.
wheel=$(PYTHON="$PWD/.venv/bin/python" scripts/build-pjsua2.sh --print-path)
if [ ! -f "$wheel" ]; then
    echo "setup: building PJSUA2 (once; cached as $wheel)"
    PYTHON="$PWD/.venv/bin/python" scripts/build-pjsua2.sh >/dev/null
fi
pjstamp=.venv/.pjsua2-wheel
if [ "$(cat "$pjstamp" 2>/dev/null)" != "$(basename "$wheel")" ]; then
    # PyPI's pjsua2-python (4 calls a process, x86_64 only) provides the same module: drop it.
    .venv/bin/python -m pip uninstall -q -y pjsua2-python >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheel"
    basename "$wheel" > "$pjstamp"
fi

# The pin library gpiozero uses on a Raspberry Pi (does nothing on other machines).
scripts/install-lgpio.sh .venv
