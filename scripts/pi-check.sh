#!/usr/bin/env bash
# Prove the project on arm64 without a Pi: a Debian 13 trixie arm64 root (Raspberry Pi OS's
# base) under qemu-user-static, the aarch64 PJSUA2 wheel cross-compiled on this host, the
# README's set-up (the same scripts/setup.sh) run inside the root, then a smoke test there
# (scripts/pi_smoke.py: the daemon on the simulated TAS-100 with telephony, a SIPp call rings
# a lamp, the key answers, a 1 kHz tone reaches the position, a stamp printed to a pty, the
# view answers). Prints the time each step took.
#
#   scripts/pi-check.sh            the smoke test (CI runs this)
#   scripts/pi-check.sh --suite    and then the project's test suite inside the root (long)
#
# Everything built is cached outside the clone (~/.cache/tas-switchboard: the root, the
# wheels); a warm run takes a few minutes. Needs root (debootstrap, chroot, mounts) and
# internet for Debian's mirror and PyPI. On an arm64 machine (a Pi) it is not needed: run
# the README's two commands there.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
export QEMU_CPU=cortex-a72
suite=0
for a in "$@"; do
    case "$a" in
        --suite) suite=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "pi-check: unknown option $a (expected --suite)" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    exec sudo --preserve-env=XDG_CACHE_HOME,PI_ROOT,PI_SUITE,SWITCHBOARD_VENDOR bash "$repo/scripts/pi-check.sh" "$@"
fi

APT=(apt-get -o DPkg::Lock::Timeout=900)
TIMES=()
T_ALL=$SECONDS
step() {  # step NAME CMD...: run, time, stop at the first failure
    local name="$1" t=$SECONDS rc=0
    shift
    echo "pi-check: == $name"
    "$@" || rc=$?
    TIMES+=("$(printf '%6d s  %s' $((SECONDS - t)) "$name")")
    if [ $rc != 0 ]; then
        echo "pi-check: FAILED: $name (exit $rc)" >&2
        summary
        exit 1
    fi
}
summary() {
    echo "pi-check: timings (total $((SECONDS - T_ALL)) s):"
    printf 'pi-check: %s\n' "${TIMES[@]}"
}

host_tools() {
    local missing=()
    for p in gcc-aarch64-linux-gnu g++-aarch64-linux-gnu swig build-essential rsync \
             qemu-user-static binfmt-support debootstrap; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "pi-check: installing ${missing[*]}"
        "${APT[@]}" update -qq
        DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

ROOT=""
make_root() { ROOT=$(scripts/pi-root.sh build); }

WHEEL=""
cross_wheel() {
    WHEEL=$(scripts/build-pjsua2.sh --sysroot "$ROOT" | tail -1)
    local cache="$ROOT/root/.cache/tas-switchboard/pjsua2"
    mkdir -p "$cache"
    cp -p "$WHEEL" "$cache/"
    echo "pi-check: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) kB) in the root's cache"
}

DEST=/home/pi/tas-switchboard
copy_repo() {
    # A copy, not a bind mount: the root's .venv (aarch64) lives beside the code there,
    # and stays between runs.
    mkdir -p "$ROOT$DEST"
    rsync -a --delete --exclude=/.venv --exclude=/.git --exclude=__pycache__ \
        --exclude=/.pytest_cache --exclude='*.egg-info' "$repo/" "$ROOT$DEST/"
}

in_root() { scripts/pi-root.sh run -- bash -c "cd $DEST && $1"; }

setup_inside() {
    in_root 'uname -m; python3 --version; time scripts/setup.sh'
}

# The root's Debian packages (the list scripts/setup.sh installs) beside the cross build: the
# two longest steps of a first run, one emulated (dpkg), one native (the compiler).
wheel_and_packages() {
    local log rc=0 pid
    log=$(mktemp /tmp/pi-check-cross.XXXXXX)
    cross_wheel > "$log" 2>&1 &
    pid=$!
    in_root 'missing=(); for p in $(scripts/setup.sh --print-apt-packages); do
                 dpkg-query -W -f="\${Status}" "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
             done
             if ((${#missing[@]})); then
                 echo "pi-check: installing in the root: ${missing[*]}"
                 apt-get -o DPkg::Lock::Timeout=900 update -qq &&
                 DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
                     --no-install-recommends "${missing[@]}" >/dev/null
             fi' || rc=$?
    wait "$pid" || { cat "$log"; rm -f "$log"; echo "pi-check: the cross build failed" >&2; return 1; }
    cat "$log"
    rm -f "$log"
    return $rc
}

smoke() {
    # curl for the smoke test's view check (not part of the project's set-up)
    in_root 'command -v curl >/dev/null || { apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends curl >/dev/null; }'
    in_root '.venv/bin/python scripts/pi_smoke.py --board tas100'
}

step "host tools (cross compilers, qemu, debootstrap)" host_tools
step "arm64 ${PI_SUITE:-trixie} root (scripts/pi-root.sh, cached)" make_root
step "the clone copied into the root ($DEST)" copy_repo
step "aarch64 PJSUA2 wheel (build-pjsua2.sh --sysroot, cross) beside the root's Debian packages" \
    wheel_and_packages
step "scripts/setup.sh inside the root (the README's set-up)" setup_inside
step "smoke test inside the root (scripts/pi_smoke.py)" smoke

# ---- HOOK: the systemd service half of issue 11 ------------------------------------------
# scripts/install-pi.sh (another branch) installs the daemon as a service. When it is in the
# tree, it is run inside the root as a Pi user would (sudo scripts/install-pi.sh) and must
# succeed; its own checks (users, groups, files, permissions) are its business.
if [ -f scripts/install-pi.sh ]; then
    step "scripts/install-pi.sh inside the root (the service)" in_root 'bash scripts/install-pi.sh'
    if [ -f scripts/check-install.sh ]; then
        step "scripts/check-install.sh --run inside the root" in_root 'bash scripts/check-install.sh --run'
    fi
else
    echo "pi-check: (scripts/install-pi.sh is not in this tree yet: the service install is not checked)"
fi
# ---- end of HOOK --------------------------------------------------------------------------

if ((suite)); then
    step "the test suite inside the root" in_root '.venv/bin/python -m pytest -q -p no:cacheprovider'
fi
summary
echo "pi-check: passed"
