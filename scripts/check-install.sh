#!/usr/bin/env bash
# Check what scripts/install-pi.sh left: users, groups, files, owners, modes, the unit.
#
#   scripts/check-install.sh [--root DIR] [--kiosk] [--run]     after an install
#   scripts/check-install.sh [--root DIR] --uninstalled          after --uninstall
#   scripts/check-install.sh [--root DIR] --purged               after --uninstall --purge
#
# --root DIR  the tree install-pi.sh --root wrote (ids are read from DIR/etc/passwd, group)
# --kiosk     the kiosk's autostart entry must be there (and pass desktop-file-validate)
# --run       also start the installed daemon as the service would (the switchboard user,
#             its groups, the unit's environment, the simulated board) with a notify socket,
#             and wait for READY=1, then stop it and wait for STOPPING=1 (needs root; in a
#             --root DIR it runs inside DIR with chroot)
# Prints one line per check ("ok: ..." / "FAIL: ..."); exits 1 if any check failed.
set -uo pipefail

R=""
mode=installed
kiosk=0
run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --root) R="$(cd "${2:?--root needs a directory}" && pwd)"; [ "$R" = / ] && R=""; shift 2 ;;
        --kiosk) kiosk=1; shift ;;
        --run) run=1; shift ;;
        --uninstalled) mode=uninstalled; shift ;;
        --purged) mode=purged; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-install: unknown option $1" >&2; exit 2 ;;
    esac
done

failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

field() { awk -F: -v n="$2" -v f="$3" '$1 == n {print $f}' "$R/etc/$1"; }   # FILE NAME FIELD
uid() { field passwd "$1" 3; }
gid() { field group "$1" 3; }
members() { field group "$1" 4 | tr , '\n'; }

# PATH MODE USER GROUP: the file's mode (octal) and numeric owner as the root's names give them
owned() {
    local path="$R$1" want_mode="$2" u="$3" g="$4" st
    st="$(stat -c '%a %u %g' "$path" 2>/dev/null)" || { bad "$1: missing"; return; }
    local want="$want_mode $(uid "$u") $(gid "$g")"
    if [ "$st" = "$want" ]; then ok "$1: mode $want_mode, $u:$g"
    else bad "$1: mode/uid/gid $st, expected $want ($u:$g)"; fi
}
absent() { if [ -e "$R$1" ] || [ -L "$R$1" ]; then bad "$1 still there"; else ok "$1 removed"; fi; }
conf() { sed -n "s/^$1=//p" "$R/etc/switchboard/switchboard.conf" 2>/dev/null | tail -1 | sed 's/^"\(.*\)"$/\1/'; }

if [ "$mode" != installed ]; then
    for p in /etc/systemd/system/switchboard.service \
             /etc/systemd/system/multi-user.target.wants/switchboard.service \
             /etc/udev/rules.d/70-switchboard.rules /etc/udev/rules.d/60-switchboard-modems.rules \
             /etc/alsa/conf.d/60-switchboard.conf \
             /etc/xdg/autostart/switchboard-kiosk.desktop /opt/switchboard \
             /usr/local/bin/switchboard-diag; do
        absent "$p"
    done
    if [ "$mode" = uninstalled ]; then
        check "the switchboard user is kept" test -n "$(uid switchboard)"
        check "/etc/switchboard is kept" test -f "$R/etc/switchboard/switchboard.conf"
        check "/var/lib/switchboard (the records) is kept" test -d "$R/var/lib/switchboard"
    else
        check "the switchboard user is gone" test -z "$(uid switchboard)"
        check "the switchboard group is gone" test -z "$(gid switchboard)"
        absent /etc/switchboard
        absent /var/lib/switchboard
        for g in gpio dialout audio; do check "group $g is kept" test -n "$(gid "$g")"; done
    fi
    exit $failed
fi

# -- the user and groups -----------------------------------------------------------------
u="$(uid switchboard)"
if [ -z "$u" ]; then bad "no switchboard user in $R/etc/passwd"; exit 1; fi
check "switchboard is a system user (uid $u)" test "$u" -lt 1000
check "its primary group is switchboard" test "$(field passwd switchboard 4)" = "$(gid switchboard)"
check "its home is /var/lib/switchboard" test "$(field passwd switchboard 6)" = /var/lib/switchboard
check "it cannot log in ($(field passwd switchboard 7))" test "$(basename "$(field passwd switchboard 7)")" = nologin
for g in gpio dialout audio; do
    check "switchboard is in the $g group" bash -c "awk -F: -v n='$g' '\$1 == n {print \$4}' '$R/etc/group' | tr , '\n' | grep -qx switchboard"
done

# -- files ----------------------------------------------------------------------------
owned /etc/systemd/system/switchboard.service 644 root root
check "the unit is the one shipped" cmp -s "$R/etc/systemd/system/switchboard.service" "$R/opt/switchboard/src/scripts/service/switchboard.service"
for want in Type=notify WatchdogSec= Restart=on-failure RuntimeDirectory=switchboard \
            StateDirectory=switchboard ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes \
            PrivateTmp=yes User=switchboard "SupplementaryGroups=gpio dialout audio"; do
    check "the unit has $want" grep -q "^$want" "$R/etc/systemd/system/switchboard.service"
done
check "the unit is enabled (multi-user.target.wants)" test "$(readlink "$R/etc/systemd/system/multi-user.target.wants/switchboard.service")" = /etc/systemd/system/switchboard.service
owned /etc/switchboard 750 root switchboard
owned /etc/switchboard/switchboard.conf 640 root switchboard
board="$(conf SWITCHBOARD_BOARD)"
check "the conf names a board file ($board)" test -n "$board" -a -f "$R$board"
[ -n "$board" ] && owned "$board" 644 root switchboard
site="$(conf SWITCHBOARD_SITE)"
if [ -n "$site" ]; then owned "$site" 600 switchboard switchboard; else ok "no site file named (no telephony)"; fi
owned /var/lib/switchboard 750 switchboard switchboard
owned /opt/switchboard 755 root root
check "nothing under /opt/switchboard is writable by others or not root's" \
    test -z "$(find "$R/opt/switchboard" \( -perm -o+w -o -perm -g+w -o ! -user 0 \) ! -type l -print -quit)"
check "the daemon's console script is there" test -x "$R/opt/switchboard/venv/bin/switchboard"
check "the lamp-blanking helper (ExecStopPost=) is there" test -x "$R/opt/switchboard/venv/bin/switchboard-blank"
check "switchboard-diag is on the PATH" test "$(readlink "$R/usr/local/bin/switchboard-diag")" = /opt/switchboard/venv/bin/switchboard-diag
owned /etc/udev/rules.d/70-switchboard.rules 644 root root
check "udev: ModemManager kept off USB serial adapters" grep -q 'ENV{ID_MM_DEVICE_IGNORE}="1"' "$R/etc/udev/rules.d/70-switchboard.rules"
owned /etc/udev/rules.d/60-switchboard-modems.rules 644 root root
check "udev: voice modems (Conexant 0572) kept from ModemManager" grep -q 'ATTRS{idVendor}=="0572".*ID_MM_DEVICE_IGNORE' "$R/etc/udev/rules.d/60-switchboard-modems.rules"
if [ -n "$(conf SWITCHBOARD_PRINTER_USB)" ]; then
    check "udev: /dev/switchboard-printer on USB port $(conf SWITCHBOARD_PRINTER_USB)" \
        grep -q "KERNELS==\"$(conf SWITCHBOARD_PRINTER_USB)\", SYMLINK+=\"switchboard-printer\"" "$R/etc/udev/rules.d/70-switchboard.rules"
fi
for n in 1 2; do
    port="$(conf "SWITCHBOARD_HEADSET${n}_USB")"
    [ -n "$port" ] || continue
    check "udev: headset$n on USB port $port" grep -q "KERNELS==\"$port\", ATTR{id}=\"headset$n\"" "$R/etc/udev/rules.d/70-switchboard.rules"
    check "ALSA: a PCM named headset$n" grep -q "^pcm.headset$n " "$R/etc/alsa/conf.d/60-switchboard.conf"
done
if [ "$kiosk" = 1 ]; then
    owned /etc/xdg/autostart/switchboard-kiosk.desktop 644 root root
    if command -v desktop-file-validate >/dev/null; then
        check "the kiosk's autostart entry passes desktop-file-validate" \
            bash -c "out=\$(desktop-file-validate '$R/etc/xdg/autostart/switchboard-kiosk.desktop' 2>&1) && [ -z \"\$out\" ]"
    fi
    check "the kiosk's launcher is there" test -x "$R/opt/switchboard/bin/switchboard-kiosk"
fi

# -- the unit, as systemd reads it ----------------------------------------------------
if command -v systemd-analyze >/dev/null && [ -f "$R/usr/lib/systemd/system/sysinit.target" -o -f "$R/lib/systemd/system/sysinit.target" ]; then
    rootopt=(); [ -n "$R" ] && rootopt=(--root="$R")
    out="$(systemd-analyze verify --man=no "${rootopt[@]}" /etc/systemd/system/switchboard.service 2>&1)"
    if [ $? -eq 0 ] && [ -z "$out" ]; then ok "systemd-analyze verify: no complaints"
    else bad "systemd-analyze verify: $out"; fi
else
    echo "note: systemd-analyze or systemd's own units are not in ${R:-/}: the unit was not verified"
fi

# -- the installed copy, run as the service runs it --------------------------------------
in_root() { if [ -n "$R" ] && [ -x "$R/usr/bin/python3" ]; then chroot "$R" "$@"; else "$@"; fi; }
py=/opt/switchboard/venv/bin/python
[ -n "$R" ] && [ ! -x "$R/usr/bin/python3" ] && py="$R$py"     # a bare tree: its venv from here
check "the installed venv imports the daemon, the view, the telephony and the tools" \
    in_root "$py" -c "import firmware.runtime.daemon, firmware.runtime.web, firmware.telephony.adapter, switchboard_tools.diag, gpiozero, aiohttp, serial, tinydb"
if [ "$run" = 1 ]; then
    # As the unit runs it: the switchboard user, its groups, the conf's environment.
    mkdir -p "$R/tmp"
    tmp="$(mktemp -d "$R/tmp/check-install.XXXXXX")"
    cp "$(dirname "$0")/service/notify_probe.py" "$tmp/"
    chown "$(uid switchboard):$(gid switchboard)" "$tmp"
    groups="$(for g in gpio dialout audio; do gid "$g"; done | paste -sd, -)"
    t="${tmp#$R}"; [ -x "$R/usr/bin/python3" ] || t="$tmp"
    prefix=(); [ -n "$R" ] && [ ! -x "$R/usr/bin/python3" ] && prefix=(--prefix "$R")
    extra=(); [ -n "$site" ] && extra=(--sip-port 0)
    in_root "$py" "$t/notify_probe.py" --uid "$(uid switchboard)" --gid "$(gid switchboard)" \
        --groups "$groups" --conf /etc/switchboard/switchboard.conf "${prefix[@]}" -- \
        "$py" -m firmware --sim --web-port 0 --socket "$t/control.sock" \
        --data-dir "$t/data" "${extra[@]}"
    if [ $? -eq 0 ]; then ok "the installed daemon, run as switchboard, said READY=1, petted the watchdog, said STOPPING=1"
    else bad "the installed daemon did not start and stop as a service should (above)"; fi
    rm -rf "$tmp"
fi
exit $failed
