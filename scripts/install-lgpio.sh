#!/usr/bin/env bash
# Install lgpio, the pin library gpiozero uses on a Raspberry Pi (the Pi 5's only one, and
# gpiozero's first choice on every model), into a virtual environment.
#
#   scripts/install-lgpio.sh [--force] [VENV]      VENV defaults to the clone's .venv
#
# Called by scripts/setup.sh; scripts/install-pi.sh copies the result into the service's venv.
# On a machine that is not an ARM Linux board (an x86 laptop, CI) it does nothing unless
# --force is given: the simulated board needs no pin library. In order:
#   1. lgpio already usable in the venv: nothing to do;
#   2. a ready-made wheel of lgpio 0.2 or later from PyPI (there is one for Python 3.11 on
#      aarch64: bookworm). Not any wheel: PyPI's lgpio 0.0.0.2 is a py3-none-any wheel
#      whose lgpio.py is empty, which pip would take for Python 3.13 and which imports
#      without error but drives nothing;
#   3. otherwise (Python 3.13 on trixie has none, and Debian has no liblgpio) lgpio's own
#      source distribution, built with PYPI=1: its setup.py then compiles the C library into
#      the module itself, so nothing is installed system-wide. Needs swig, gcc and the Python
#      headers (installed with apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
venv="${1:-.venv}"
py="$venv/bin/python"
say() { echo "install-lgpio: $*" >&2; }

[ -x "$py" ] || { say "no virtual environment at $venv (run scripts/setup.sh first)"; exit 1; }
# Usable: the real module, with its C library (not the empty lgpio 0.0.0.2).
usable() { "$py" -c "import lgpio; lgpio.gpiochip_open" 2>/dev/null; }
if usable; then
    exit 0
fi
case "$(uname -m)" in
    aarch64|arm64|armv7l|armv6l) ;;
    *)
        if [ "$force" = 0 ]; then
            say "$(uname -m) is not a Raspberry Pi: no pin library needed (the simulated board runs without one)"
            exit 0
        fi ;;
esac

say "installing lgpio into $venv"
if "$py" -m pip install -q --upgrade --only-binary :all: "lgpio>=0.2" >/dev/null 2>&1 && usable; then
    say "lgpio installed from a wheel"
    exit 0
fi

missing=()
for p in swig gcc python3-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    say "installing Debian packages: ${missing[*]}"
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
fi
say "no wheel for this Python: building lgpio and its C library from source (about 2 minutes on a Pi)"
if ! PYPI=1 "$py" -m pip install -q --upgrade --force-reinstall --no-binary lgpio "lgpio>=0.2"; then
    say "building lgpio failed (see above); gpiozero cannot drive the pins without a pin library"
    exit 1
fi
usable || { say "lgpio was built but does not import"; exit 1; }
say "lgpio built and installed"
