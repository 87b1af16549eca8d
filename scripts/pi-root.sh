#!/usr/bin/env bash
# A Debian 13 "trixie" arm64 root (Raspberry Pi OS's base) built with debootstrap under
# qemu-user-static, cached outside the clone, for proving the project on arm64 without a Pi.
#
#   scripts/pi-root.sh                 build the root if it is not cached; print its path
#   scripts/pi-root.sh run [--bind HOST:ROOTPATH]... -- CMD...
#                                      run CMD inside it (proc, sys, dev, dev/pts mounted;
#                                      each --bind mounted read-write; all unmounted after)
#
# Cache: $PI_ROOT, else ${XDG_CACHE_HOME:-~/.cache}/tas-switchboard/pi-root-$PI_SUITE-arm64
# (PI_SUITE: trixie unless told otherwise).
# Needs root (debootstrap, chroot, mounts). QEMU_CPU=cortex-a72 always: qemu's default CPU
# emulates pointer authentication in software, which trixie uses on every call (~250x slower
# than native instead of ~10x); see ../shared/FACTS.md.
set -euo pipefail
export QEMU_CPU=cortex-a72
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tas-switchboard"
SUITE="${PI_SUITE:-trixie}"    # Raspberry Pi OS 13's base; bookworm for Raspberry Pi OS 12
ROOT="${PI_ROOT:-$CACHE/pi-root-$SUITE-arm64}"
# What the root holds besides minbase: the sysroot the cross build of PJSUA2 takes its
# headers and libraries from (Python 3.13, OpenSSL, opus), and what pip needs.
ROOT_PACKAGES="python3,python3-venv,python3-dev,ca-certificates,libssl-dev,libopus-dev"
# Bump when the recipe changes: a root made by an older recipe is rebuilt.
RECIPE="1:$SUITE:$ROOT_PACKAGES"
APT=(apt-get -o DPkg::Lock::Timeout=900)

die() { echo "pi-root: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts): run it with sudo"

host_tools() {
    local missing=()
    for p in qemu-user-static binfmt-support debootstrap; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "pi-root: installing ${missing[*]}" >&2
        "${APT[@]}" update -qq
        DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
            || die "cannot mount binfmt_misc (a container without the privilege?)"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
        || die "qemu-aarch64 is not registered with binfmt_misc (update-binfmts --enable qemu-aarch64)"
}

# The Debian mirror the host's apt uses (deb822 "URIs:" or a one-line "deb URL suite").
mirror() {
    local m
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^[[:space:]]*#/ {next}
               /^URIs:/ {for (i = 2; i <= NF; i++) print $i}
               /^deb[[:space:]]/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
        | grep -v -e security -e '/debian-ports' | grep '/debian/\?$' | head -1)
    echo "${m:-http://deb.debian.org/debian}"
}

MOUNTED=()
unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount -l "${MOUNTED[i]}" 2>/dev/null || true
    done
    MOUNTED=()
}
bind() {  # bind HOST-PATH ROOT-PATH
    mkdir -p "$ROOT$2"
    mount --bind "$1" "$ROOT$2"
    MOUNTED+=("$ROOT$2")
}
mount_system() {
    mkdir -p "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
    mount -t proc proc "$ROOT/proc"; MOUNTED+=("$ROOT/proc")
    mount --rbind /sys "$ROOT/sys"; MOUNTED+=("$ROOT/sys")
    mount --rbind /dev "$ROOT/dev"; MOUNTED+=("$ROOT/dev")
    mkdir -p "$ROOT/dev/shm"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
}
in_root() {  # run a command inside the root with a clean environment
    chroot "$ROOT" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 QEMU_CPU=cortex-a72 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

build_root() {
    host_tools
    if [ -f "$ROOT/.tas-root" ] && [ "$(cat "$ROOT/.tas-root")" = "$RECIPE" ]; then
        return 0
    fi
    local t0=$SECONDS part="$ROOT.partial" m
    m=$(mirror)
    rm -rf "$part"
    mkdir -p "$(dirname "$ROOT")"
    echo "pi-root: debootstrap $SUITE arm64 from $m into $part (about 4 min)" >&2
    debootstrap --arch=arm64 --variant=minbase --include="$ROOT_PACKAGES" "$SUITE" "$part" "$m" \
        > "$part.log" 2>&1 || die "debootstrap failed: see $part.log"
    # The host's extra CAs (a proxy's), so pip inside trusts what the host trusts.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$part/usr/local/share/ca-certificates/"
    fi
    printf 'deb %s %s main\ndeb %s %s-updates main\n' "$m" "$SUITE" "$m" "$SUITE" > "$part/etc/apt/sources.list"
    printf '#!/bin/sh\nexit 101\n' > "$part/usr/sbin/policy-rc.d"   # no services start inside
    chmod 755 "$part/usr/sbin/policy-rc.d"
    # apt's sandbox user cannot always read a bind-mounted tree: let it run as root inside
    echo 'APT::Sandbox::User "root";' > "$part/etc/apt/apt.conf.d/99tas-sandbox"
    echo raspberrypi > "$part/etc/hostname"
    local r=$ROOT; ROOT=$part
    trap unmount_all EXIT
    mount_system
    in_root update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in $part"
    unmount_all
    trap - EXIT
    ROOT=$r
    rm -rf "$ROOT"
    mv "$part" "$ROOT"
    echo "$RECIPE" > "$ROOT/.tas-root"
    echo "pi-root: root ready in $((SECONDS - t0)) s: $ROOT" >&2
}

case "${1:-build}" in
    build)
        build_root
        echo "$ROOT"
        ;;
    path)
        echo "$ROOT"
        ;;
    run)
        shift
        build_root
        binds=()
        while [ $# -gt 0 ] && [ "$1" != "--" ]; do
            case "$1" in
                --bind) binds+=("$2"); shift 2 ;;
                *) die "run: unknown option $1 (expected --bind HOST:ROOTPATH or --)" ;;
            esac
        done
        [ "${1:-}" = "--" ] && shift
        [ $# -gt 0 ] || die "run: no command given"
        trap unmount_all EXIT
        mount_system
        for b in "${binds[@]}"; do bind "${b%%:*}" "${b#*:}"; done
        rc=0
        in_root "$@" || rc=$?
        unmount_all
        exit $rc
        ;;
    *)
        die "unknown command $1 (expected: build, path, run)"
        ;;
esac
