#!/usr/bin/env bash
# Build pjproject and its SWIG Python binding (PJSUA2) from a pinned release into a wheel,
# cached outside the clone per (release, configuration, Python version, architecture).
# Prints the wheel's path on its last line; a second run finds it in the cache at once.
#
#   scripts/build-pjsua2.sh                           native: for this machine's python3
#   scripts/build-pjsua2.sh --sysroot ROOT            cross: aarch64 wheel for the Python of an
#                                                     arm64 Debian root (scripts/pi-root.sh)
#   scripts/build-pjsua2.sh --print-path [...]        the wheel's path, built or not
#
# Environment: PJ_RELEASE (default: the pinned one below), SWITCHBOARD_VENDOR (a folder of
# release tarballs with SHA256SUMS; default ../shared/vendor from the project's root),
# PYTHON (native: the interpreter to build for; default python3), JOBS (default 2),
# XDG_CACHE_HOME. Needs: build-essential, swig, libssl-dev, libopus-dev, python3-dev
# (scripts/setup.sh installs them); cross: gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"

# The release and the commit its tag points at (checked on a download; the vendored
# tarball is checked against its SHA256SUMS). 2.15.1 is the release the project's code was
# written and measured against (the PyPI wheel's); see the commit that chose it.
PJ_RELEASE="${PJ_RELEASE:-2.15.1}"
declare -A PJ_COMMIT=(
    [2.15.1]=7de6e686fee1642f5443a3f39f0e5ad5e478a117
    [2.17]=5a457451fa2712ba18e12b01738e8ff3af2b26fd
)
PJ_UPSTREAM=https://github.com/pjsip/pjproject
CONFIG_SITE="$here/pjsua2/config_site.h"
# Part of the cache key with config_site.h: change it when the recipe below changes.
CONFIGURE_FLAGS=(--disable-video --disable-sound --disable-v4l2 --disable-ffmpeg --disable-sdl
    --disable-openh264 --disable-vpx --disable-libyuv --disable-libwebrtc --disable-libwebrtc-aec3
    --disable-silk --disable-bcg729 --disable-lyra --disable-opencore-amr --disable-upnp
    --disable-libuuid --disable-android-mediacodec --disable-darwin-ssl)
RECIPE_VERSION=1
JOBS="${JOBS:-2}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tas-switchboard/pjsua2"

die() { echo "build-pjsua2: $*" >&2; exit 1; }
say() { echo "build-pjsua2: $*" >&2; }

sysroot="" print_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --sysroot) sysroot="$(cd "${2:?--sysroot needs a folder}" && pwd)" || die "no such folder: $2"; shift 2 ;;
        --print-path) print_only=1; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (expected --sysroot ROOT, --print-path)" ;;
    esac
done
[ -n "${PJ_COMMIT[$PJ_RELEASE]:-}" ] || die "PJ_RELEASE=$PJ_RELEASE is not a pinned release (pinned: ${!PJ_COMMIT[*]})"

# --- what to build for --------------------------------------------------------------------
if [ -n "$sysroot" ]; then
    arch=aarch64; triplet=aarch64-linux-gnu; host_flag=(--host=aarch64-linux-gnu)
    pyinc=$(ls -d "$sysroot"/usr/include/python3.* 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$pyinc" ] && [ -f "$pyinc/Python.h" ] \
        || die "$sysroot has no Python headers (usr/include/python3.*/Python.h): install python3-dev in it"
    pyver=${pyinc##*/python}
    ext_suffix=".cpython-${pyver/./}-$triplet.so"
    export CC=$triplet-gcc CXX=$triplet-g++ AR="$triplet-ar" RANLIB="$triplet-ranlib"
    STRIP=$triplet-strip
    command -v "$CXX" >/dev/null || die "$CXX not found: apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu"
else
    PY="${PYTHON:-python3}"
    command -v "$PY" >/dev/null || die "$PY not found"
    arch=$(uname -m); host_flag=()
    read -r pyver pyinc ext_suffix < <("$PY" -c 'import sys, sysconfig as s; print("%d.%d" % sys.version_info[:2], s.get_paths()["include"], s.get_config_var("EXT_SUFFIX"))')
    [ -f "$pyinc/Python.h" ] || die "no Python.h in $pyinc: apt-get install python3-dev"
    export CC="${CC:-gcc}" CXX="${CXX:-g++}"
    STRIP=strip
fi
cpy="cp${pyver/./}"
confhash=$( { cat "$CONFIG_SITE"; echo "${CONFIGURE_FLAGS[*]} $RECIPE_VERSION"; } | sha256sum | cut -c1-12)
version="$PJ_RELEASE+tas.$confhash"
wheel="$CACHE/pjsua2-$version-$cpy-$cpy-linux_$arch.whl"
if ((print_only)); then echo "$wheel"; exit 0; fi
if [ -f "$wheel" ]; then
    say "cached: $wheel"
    echo "$wheel"
    exit 0
fi

# --- the source ---------------------------------------------------------------------------
mkdir -p "$CACHE"
work="$CACHE/build/$PJ_RELEASE-$confhash-$cpy-$arch"
log="$CACHE/build-$PJ_RELEASE-$confhash-$cpy-$arch.log"
rm -rf "$work"; mkdir -p "$work"
: > "$log"
say "building PJSUA2 $PJ_RELEASE for Python $pyver on $arch${sysroot:+ (cross, sysroot $sysroot)}; log: $log"
T0=$SECONDS
step() { local t=$SECONDS; say "  $1 ..."; shift; if "$@" >> "$log" 2>&1; then say "    $((SECONDS - t)) s"; else say "failed: see the end of $log"; tail -20 "$log" >&2; exit 1; fi; }

vendor="${SWITCHBOARD_VENDOR:-$repo/../shared/vendor}"
tarball="$vendor/pjproject-$PJ_RELEASE.tar.gz"
if [ -f "$tarball" ]; then
    [ -f "$vendor/SHA256SUMS" ] || die "$vendor has no SHA256SUMS to check $tarball against"
    want=$(awk -v f="pjproject-$PJ_RELEASE.tar.gz" '$2 == f || $2 == "*" f {print $1}' "$vendor/SHA256SUMS")
    [ -n "$want" ] || die "$vendor/SHA256SUMS has no line for pjproject-$PJ_RELEASE.tar.gz"
    got=$(sha256sum "$tarball" | cut -d' ' -f1)
    [ "$got" = "$want" ] || die "$tarball: SHA-256 expected $want, got $got (a damaged or different file)"
    say "  source: $tarball (SHA-256 checked)"
    tar -xzf "$tarball" -C "$work"
else
    # No vendored tarball (a Pi with internet): the tag from upstream, checked by its commit.
    command -v git >/dev/null || die "no $tarball and no git to fetch tag $PJ_RELEASE from $PJ_UPSTREAM"
    say "  source: $PJ_UPSTREAM tag $PJ_RELEASE"
    git clone -q --depth 1 --branch "$PJ_RELEASE" "$PJ_UPSTREAM" "$work/pjproject-$PJ_RELEASE" >> "$log" 2>&1 \
        || die "could not fetch tag $PJ_RELEASE from $PJ_UPSTREAM (see $log)"
    got=$(git -C "$work/pjproject-$PJ_RELEASE" rev-parse HEAD)
    [ "$got" = "${PJ_COMMIT[$PJ_RELEASE]}" ] \
        || die "$PJ_UPSTREAM tag $PJ_RELEASE: commit expected ${PJ_COMMIT[$PJ_RELEASE]}, got $got (the tag moved?)"
fi
src="$work/pjproject-$PJ_RELEASE"
cp "$CONFIG_SITE" "$src/pjlib/include/pj/config_site.h"

# --- cross: headers and libraries from the arm64 root, nothing else of it ------------------
cflags="-O2 -fPIC -g0" ldflags=""
if [ -n "$sysroot" ]; then
    stage="$work/sysroot"
    ml="$sysroot/usr/lib/$triplet"
    mkdir -p "$stage/include/$triplet" "$stage/lib"
    for d in openssl opus "python$pyver"; do
        [ -e "$sysroot/usr/include/$d" ] || die "$sysroot lacks usr/include/$d: install libssl-dev libopus-dev python3-dev in it"
        ln -s "$sysroot/usr/include/$d" "$stage/include/$d"
        [ -e "$sysroot/usr/include/$triplet/$d" ] && ln -s "$sysroot/usr/include/$triplet/$d" "$stage/include/$triplet/$d"
    done
    for l in ssl crypto opus; do
        so=$(readlink -f "$ml/lib$l.so") || true
        [ -f "$so" ] || die "$sysroot lacks lib$l.so for $triplet: install its -dev package in it"
        ln -s "$so" "$stage/lib/lib$l.so"
    done
    cflags="$cflags -I$stage/include -I$stage/include/$triplet"
    # trixie's libcrypto wants glibc 2.38; the cross toolchain links against 2.36. The module
    # is loaded by trixie's own Python, whose glibc has them.
    ldflags="-L$stage/lib -Wl,--allow-shlib-undefined"
    # configure leaves SSL out of a cross build unless told where it is
    host_flag+=(--with-ssl="$stage")
fi

cd "$src"
step "configure" env CFLAGS="$cflags" CXXFLAGS="$cflags" LDFLAGS="$ldflags" \
    ./configure "${host_flag[@]}" "${CONFIGURE_FLAGS[@]}"
grep -q "^#define PJ_HAS_SSL_SOCK 1" pjlib/include/pj/compat/os_auto.h 2>/dev/null \
    || grep -q "PJ_SSL_SOCK_IMP.*OPENSSL" pjlib/include/pj/compat/os_auto.h \
    || say "  warning: configure found no OpenSSL: no TLS in this build"
step "make dep" make dep
step "make -j$JOBS lib" make -j"$JOBS" lib

# --- the SWIG binding ---------------------------------------------------------------------
cd pjsip-apps/src/swig/python
step "swig" swig -I../../../../pjlib/include -I../../../../pjlib-util/include -I../../../../pjmedia/include \
    -I../../../../pjsip/include -I../../../../pjnath/include -c++ -w312 -threads \
    -python -o pjsua2_wrap.cpp ../pjsua2.i
mk() { make -s --no-print-directory -f helper.mak "$1"; }
mapfile -t w_cflags < <(mk cflags)
mapfile -t w_ldflags < <(mk ldflags)
mapfile -t w_libs < <(mk libs | sed 's/^/-l/')
so="_pjsua2$ext_suffix"
step "compile the wrapper ($so)" "$CXX" -shared -fPIC "${w_cflags[@]}" -I"$pyinc" \
    ${sysroot:+-I"$stage/include/$triplet"} pjsua2_wrap.cpp -o "$so" "${w_ldflags[@]}" "${w_libs[@]}"
"$STRIP" --strip-unneeded "$so"

# --- the wheel ----------------------------------------------------------------------------
step "wheel" python3 - "$wheel.part" "$version" "$cpy" "$arch" pjsua2.py "$so" <<'PYEOF'
import base64, hashlib, sys, zipfile
out, version, cpy, arch, *files = sys.argv[1:]
dist = f"pjsua2-{version}.dist-info"
meta = {
    f"{dist}/METADATA": "Metadata-Version: 2.1\nName: pjsua2\nVersion: %s\n"
        "Summary: PJSUA2 (pjproject's SWIG Python binding), built by tas-switchboard's "
        "scripts/build-pjsua2.sh\nHome-page: https://www.pjsip.org\nLicense: GPL-2.0-or-later\n" % version,
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tas-switchboard build-pjsua2.sh\n"
        f"Root-Is-Purelib: false\nTag: {cpy}-{cpy}-linux_{arch}\n",
    f"{dist}/top_level.txt": "_pjsua2\npjsua2\n",
}
record = []
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for f in files:
        data = open(f, "rb").read()
        z.writestr(f, data)
        record.append(f"{f},{digest(data)},{len(data)}")
    for name, text in meta.items():
        data = text.encode()
        z.writestr(name, data)
        record.append(f"{name},{digest(data)},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    z.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
PYEOF
mv "$wheel.part" "$wheel"
cd "$CACHE"
[ -n "${PJ_KEEP_BUILD:-}" ] || rm -rf "$work"
say "built in $(( (SECONDS - T0) / 60 )) min $(( (SECONDS - T0) % 60 )) s: $wheel ($(du -k "$wheel" | cut -f1) kB)"
echo "$wheel"
