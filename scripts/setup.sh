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
APT_PACKAGES=(
    python3-venv python3-dev gcc
    portaudio19-dev libasound2-plugins alsa-utils sox
    sip-tester kamailio baresip
    kamailio-tls-modules openssl
    chromium
    fonts-dejavu-core espeak-ng
    graphviz
    systemd desktop-file-utils
)

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
stamp=.venv/.setup-stamp
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[telephony,office,test]"
    touch "$stamp"
fi

# The pin library gpiozero uses on a Raspberry Pi (does nothing on other machines).
scripts/install-lgpio.sh .venv
