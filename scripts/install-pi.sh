#!/usr/bin/env bash
# Install the switchboard as a system service on a Raspberry Pi (or any Debian machine with
# systemd), from a clone that scripts/setup.sh (or ./run-sim.sh) has set up. Run it again
# at any time: it brings everything to the state below and keeps your settings.
#
#   sudo scripts/install-pi.sh [--board NAME|FILE] [--site FILE] [--kiosk|--no-kiosk]
#                              [--printer-usb PORT] [--headset-usb POSITION=PORT]...
#   sudo scripts/install-pi.sh --list-usb          USB serial adapters and sound cards, by port
#   sudo scripts/install-pi.sh --uninstall [--purge]
#   --root DIR    install into DIR as if it were / (an image being built, a test): no
#                 systemctl or udevadm, users and groups written to DIR/etc.
#
# What it does:
#  - a "switchboard" system user (home /var/lib/switchboard, no login) in the gpio, dialout
#    and audio groups (created when missing, as in a plain Debian root); the user who ran
#    sudo joins the switchboard group, so switchboard-diag reaches the control socket;
#  - /opt/switchboard: a copy of this tree (src/) and a virtual environment (venv/) filled
#    from the clone's .venv, offline (scripts/service/copy_venv.py), with lgpio, the pin
#    library (scripts/install-lgpio.sh); the technicians' tools linked into /usr/local/bin;
#  - /etc/switchboard: switchboard.conf (the board, site file, printer, options, USB ports),
#    the board file and the site file (mode 0600, owner switchboard: it holds passwords);
#  - /etc/systemd/system/switchboard.service (scripts/service/switchboard.service), enabled,
#    and (re)started when systemd is running;
#  - /etc/udev/rules.d/60-switchboard-modems.rules (linux/, as shipped): USB voice modems
#    kept from ModemManager, in the dialout group
#  - /etc/udev/rules.d/70-switchboard.rules: /dev/switchboard-printer and the ALSA cards
#    headset1, headset2 by USB port, GPIO chips for the gpio group, ModemManager kept off
#    USB serial adapters; /etc/alsa/conf.d/60-switchboard.conf: PCMs named headset1, headset2
#    for the site file;
#  - with --kiosk: /etc/xdg/autostart/switchboard-kiosk.desktop, the board's view full
#    screen on the Pi's own display when the desktop starts.
# --uninstall removes all that but /etc/switchboard, /var/lib/switchboard (the slips, call
# records, customers) and the user; --purge removes those too.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/switchboard
UNIT=switchboard.service
USER_NAME=switchboard
GROUPS_WANTED=(gpio dialout audio)
MM_IGNORE_DEFAULT="0403:6001 0403:6015 067b:2303 1a86:7523 10c4:ea60"

say() { echo "install-pi: $*"; }
die() { echo "install-pi: $*" >&2; exit 1; }

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

# -- options ------------------------------------------------------------------------
ROOT=/
action=install
purge=0
board=""
site=""
kiosk=""          # "", yes, no
printer_usb=""
headset_usb=()
venv="$SRC/.venv"
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --board) board="${2:?--board needs a board name or file}"; shift 2 ;;
        --site) site="${2:?--site needs a site file}"; shift 2 ;;
        --kiosk) kiosk=yes; shift ;;
        --no-kiosk) kiosk=no; shift ;;
        --printer-usb) printer_usb="${2:?--printer-usb needs a USB port such as 1-1.2}"; shift 2 ;;
        --headset-usb) headset_usb+=("${2:?--headset-usb needs POSITION=PORT, e.g. 1=1-1.3}"); shift 2 ;;
        --venv) venv="${2:?--venv needs a directory}"; shift 2 ;;
        --uninstall) action=uninstall; shift ;;
        --purge) purge=1; shift ;;
        --list-usb) action=list-usb; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install-pi: unknown option $1" >&2; usage 2 ;;
    esac
done
[ -d "$ROOT" ] || die "--root $ROOT: no such directory"
R="$(cd "$ROOT" && pwd)"; [ "$R" = / ] && R=""
if [ "$purge" = 1 ] && [ "$action" != uninstall ]; then die "--purge goes with --uninstall"; fi

# systemd is running this machine (not a chroot, an image being built or a container)
systemd_running() { [ -z "$R" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }
udev_running() { [ -z "$R" ] && [ -S /run/udev/control ] && command -v udevadm >/dev/null; }

# -- users and groups, in $R/etc (useradd --prefix writes there without a chroot) ----
prefix_opt=(); [ -n "$R" ] && prefix_opt=(--prefix "$R")
has_group() { grep -q "^$1:" "$R/etc/group" 2>/dev/null; }
has_user() { grep -q "^$1:" "$R/etc/passwd" 2>/dev/null; }
nologin() { for s in /usr/sbin/nologin /sbin/nologin; do [ -x "$R$s" ] && { echo "$s"; return; }; done; echo /usr/sbin/nologin; }

make_users() {
    local g
    for g in "$USER_NAME" "${GROUPS_WANTED[@]}"; do
        if ! has_group "$g"; then
            groupadd "${prefix_opt[@]}" --system "$g"
            say "group $g created"
        fi
    done
    if ! has_user "$USER_NAME"; then
        useradd "${prefix_opt[@]}" --system --gid "$USER_NAME" \
            --groups "$(IFS=,; echo "${GROUPS_WANTED[*]}")" \
            --home-dir /var/lib/switchboard --no-create-home --shell "$(nologin)" \
            --comment "TAS switchboard daemon" "$USER_NAME"
        say "user $USER_NAME created (groups: ${GROUPS_WANTED[*]})"
    else
        usermod "${prefix_opt[@]}" -a -G "$(IFS=,; echo "${GROUPS_WANTED[*]}")" "$USER_NAME"
    fi
    # The person who ran sudo may use switchboard-diag (the control socket answers the group).
    local who="${SUDO_USER:-}"
    if [ -z "$R" ] && [ -n "$who" ] && [ "$who" != root ] && has_user "$who" \
            && ! id -nG "$who" | tr ' ' '\n' | grep -qx "$USER_NAME"; then
        usermod -a -G "$USER_NAME" "$who"
        say "$who joins the $USER_NAME group (for switchboard-diag; takes effect at the next login)"
    fi
}

# -- the project: /opt/switchboard/{src,venv} ----------------------------------------
install_project() {
    [ -x "$venv/bin/python" ] || die "no virtual environment at $venv: run ./run-sim.sh or scripts/setup.sh first, as yourself"
    # lgpio (setup.sh normally did it): as the clone's owner, so no root-owned files land in
    # the clone's venv.
    local owner home
    owner="$(stat -c %u "$venv")"
    if [ "$owner" = 0 ]; then
        "$SRC/scripts/install-lgpio.sh" "$venv"
    else
        home="$(getent passwd "$owner" | cut -d: -f6)"
        setpriv --reuid="$owner" --regid="$(stat -c %g "$venv")" --init-groups \
            env HOME="${home:-/tmp}" "$SRC/scripts/install-lgpio.sh" "$venv"
    fi
    local dest="$R$PREFIX" new="$R$PREFIX.new" base
    base="$("$venv/bin/python" -c 'import sys; print(sys._base_executable)')"
    rm -rf "$new"
    mkdir -p "$new/bin"
    # The tree, without the clone's venv, records, caches, tests or pictures.
    mkdir -p "$new/src"
    tar -C "$SRC" -cf - --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache \
        --exclude=./tests --exclude=./benchmarks --exclude=./docs . \
        | tar -C "$new/src" --no-same-owner -xf -
    "$base" -m venv --without-pip "$new/venv"
    # venv wrote its own path into the activate scripts: make it the installed one.
    sed -i "s|$new/venv|$PREFIX/venv|g" "$new/venv/bin/"activate* 2>/dev/null || true
    "$venv/bin/python" "$SRC/scripts/service/copy_venv.py" "$SRC" "$new/venv" "$PREFIX"
    install -m 0755 "$SRC/scripts/service/switchboard-kiosk" "$new/bin/switchboard-kiosk"
    chown -R root:root "$new"
    chmod -R u+rwX,go+rX,go-w "$new"
    # A running daemon must not see its files swapped under it: stop it (install_unit starts
    # it again once everything is in place).
    if systemd_running && systemctl is-active --quiet "$UNIT"; then
        systemctl stop "$UNIT"
        say "service stopped for the update"
    fi
    if [ -e "$dest" ]; then
        rm -rf "$dest.old"
        mv "$dest" "$dest.old"
    fi
    mv "$new" "$dest"
    rm -rf "$dest.old"
    # The technicians' tools on everyone's PATH.
    local tool
    mkdir -p "$R/usr/local/bin"
    for tool in "$dest/venv/bin/"switchboard-*; do
        ln -sfn "$PREFIX/venv/bin/$(basename "$tool")" "$R/usr/local/bin/$(basename "$tool")"
    done
    say "installed in $PREFIX (from $SRC)"
}

# -- /etc/switchboard --------------------------------------------------------------------
CONF="$R/etc/switchboard/switchboard.conf"
conf_get() {  # the value of KEY in the conf file, without quotes
    [ -f "$CONF" ] || return 0
    sed -n "s/^$1=//p" "$CONF" | tail -1 | sed 's/^"\(.*\)"$/\1/'
}
conf_set() {  # KEY VALUE: replace the KEY= (or #KEY=) line, or append one
    local key="$1" value="$2" line
    if [[ "$value" =~ [[:space:]] ]]; then line="$key=\"$value\""; else line="$key=$value"; fi
    if grep -q "^$key=" "$CONF"; then
        sed -i "s|^$key=.*|$(printf '%s' "$line" | sed 's/[|&\\]/\\&/g')|" "$CONF"
    elif grep -q "^#$key=" "$CONF"; then
        sed -i "0,/^#$key=.*/s||$(printf '%s' "$line" | sed 's/[|&\\]/\\&/g')|" "$CONF"
    else
        printf '%s\n' "$line" >> "$CONF"
    fi
}

write_conf() {
    cat > "$CONF" <<'EOF'
# What the switchboard service runs: read by systemd (EnvironmentFile=) and by
# scripts/install-pi.sh. After a change: sudo systemctl restart switchboard
# (after changing the USB ports: sudo scripts/install-pi.sh, which rewrites the udev rules).

# The board file (the copy here is yours to edit; the shipped ones stay as they are).
SWITCHBOARD_BOARD=
# The site file (trunks, numbers, headsets): starts the telephony. It holds passwords:
# mode 0600, owner switchboard (install-pi.sh --site FILE puts it here so). Empty: no SIP.
SWITCHBOARD_SITE=
# The slip printer's serial port: /dev/switchboard-printer (the USB port below) or the Pi's
# own UART, /dev/serial0. Empty: stamps are only stored.
SWITCHBOARD_PRINTER=
# The time zone of schedules and figures (e.g. America/New_York); unset: the system's.
#SWITCHBOARD_TZ=
# Any other options of the daemon (switchboard --help), e.g. --operator 1=Becky
SWITCHBOARD_OPTS=

# USB ports (e.g. 1-1.2; sudo scripts/install-pi.sh --list-usb shows them) of the slip
# printer's USB serial adapter and of each position's USB headset: install-pi.sh makes udev
# rules from them for /dev/switchboard-printer and the ALSA cards headset1 and headset2
# (name them in the site file: headset = "headset1").
SWITCHBOARD_PRINTER_USB=
SWITCHBOARD_HEADSET1_USB=
SWITCHBOARD_HEADSET2_USB=
# USB serial adapters (vendor:product) that ModemManager must not probe (it sends AT
# commands, which a slip printer prints).
SWITCHBOARD_MM_IGNORE=
EOF
    conf_set SWITCHBOARD_MM_IGNORE "$MM_IGNORE_DEFAULT"
}

put_file() {  # SOURCE DEST MODE OWNER: copy, keeping the previous one as DEST.old if it differs
    local from="$1" to="$2" mode="$3" owner="$4"
    if [ -f "$to" ] && ! cmp -s "$from" "$to"; then
        cp -p "$to" "$to.old"
        say "$to replaced; the previous one is $to.old"
    fi
    install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$from" "$to"
}

uid_of() { awk -F: -v n="$1" '$1 == n {print $3}' "$R/etc/passwd"; }
gid_of() { awk -F: -v n="$1" '$1 == n {print $3}' "$R/etc/group"; }

install_config() {
    local etc="$R/etc/switchboard" uid gid
    uid="$(uid_of "$USER_NAME")"; gid="$(gid_of "$USER_NAME")"
    mkdir -p "$etc"
    chown "0:$gid" "$etc"; chmod 0750 "$etc"
    # The service's home and records (systemd's StateDirectory= keeps it so at each start).
    mkdir -p "$R/var/lib/switchboard"
    chown "$uid:$gid" "$R/var/lib/switchboard"; chmod 0750 "$R/var/lib/switchboard"
    [ -f "$CONF" ] || write_conf
    chown "0:$gid" "$CONF"; chmod 0640 "$CONF"

    # The board: --board installs one; otherwise keep the one named, or the desk board.
    local want="$board" current
    current="$(conf_get SWITCHBOARD_BOARD)"
    if [ -z "$want" ] && { [ -z "$current" ] || [ ! -f "$R$current" ]; }; then want=desk; fi
    if [ -n "$want" ]; then
        local file="$want"
        [ -f "$file" ] || file="$SRC/boards/$want.toml"
        [ -f "$file" ] || die "--board $want: no such file, and no shipped board of that name in $SRC/boards"
        case "$file" in *.site.toml) die "--board $want: that is a site file (give it with --site)";; esac
        put_file "$file" "$etc/$(basename "$file")" 0644 "0:$gid"
        conf_set SWITCHBOARD_BOARD "/etc/switchboard/$(basename "$file")"
        say "board: /etc/switchboard/$(basename "$file")"
    fi

    # The site file: holds trunk passwords, so only the service's user reads it.
    if [ -n "$site" ]; then
        [ -f "$site" ] || die "--site $site: no such file"
        put_file "$site" "$etc/$(basename "$site")" 0600 "$uid:$gid"
        conf_set SWITCHBOARD_SITE "/etc/switchboard/$(basename "$site")"
        say "site file: /etc/switchboard/$(basename "$site") (mode 0600, owner $USER_NAME)"
    fi
    local s; s="$(conf_get SWITCHBOARD_SITE)"
    if [ -n "$s" ] && [ -f "$R$s" ]; then
        chown "$uid:$gid" "$R$s"; chmod 0600 "$R$s"       # repair a copy edited by hand
        [ -f "$R$s.old" ] && { chown "$uid:$gid" "$R$s.old"; chmod 0600 "$R$s.old"; }
    fi

    if [ -n "$printer_usb" ]; then
        conf_set SWITCHBOARD_PRINTER_USB "$printer_usb"
        [ -n "$(conf_get SWITCHBOARD_PRINTER)" ] || conf_set SWITCHBOARD_PRINTER /dev/switchboard-printer
    fi
    local h
    for h in "${headset_usb[@]}"; do
        case "$h" in
            [12]=?*) conf_set "SWITCHBOARD_HEADSET${h%%=*}_USB" "${h#*=}" ;;
            *) die "--headset-usb $h: expected POSITION=PORT with position 1 or 2, e.g. 1=1-1.3" ;;
        esac
    done
}

# -- udev rules and ALSA names -------------------------------------------------------
RULES="$R/etc/udev/rules.d/70-switchboard.rules"
MODEM_RULES="$R/etc/udev/rules.d/60-switchboard-modems.rules"   # linux/, as shipped
ALSA_CONF="$R/etc/alsa/conf.d/60-switchboard.conf"
valid_port() { [[ "$1" =~ ^[0-9]+-[0-9]+(\.[0-9]+)*$ ]]; }

install_udev() {
    local port vidpid n
    mkdir -p "$(dirname "$RULES")"
    {
        echo "# Written by scripts/install-pi.sh from /etc/switchboard/switchboard.conf: edit that"
        echo "# file and run install-pi.sh again rather than this one."
        echo
        echo "# GPIO chips for the gpio group (Raspberry Pi OS has this rule; plain Debian does not)."
        echo 'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"'
        echo
        echo "# ModemManager must not probe USB serial adapters: its AT commands end up on the slips."
        for vidpid in $(conf_get SWITCHBOARD_MM_IGNORE); do
            [[ "$vidpid" =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$ ]] || die "SWITCHBOARD_MM_IGNORE: $vidpid: expected vendor:product in hex, e.g. 0403:6001"
            echo "ATTRS{idVendor}==\"${vidpid%%:*}\", ATTRS{idProduct}==\"${vidpid##*:}\", ENV{ID_MM_DEVICE_IGNORE}=\"1\""
        done
        port="$(conf_get SWITCHBOARD_PRINTER_USB)"
        if [ -n "$port" ]; then
            valid_port "$port" || die "SWITCHBOARD_PRINTER_USB=$port: expected a USB port such as 1-1.2"
            echo
            echo "# The slip printer's USB serial adapter, on USB port $port."
            echo "SUBSYSTEM==\"tty\", KERNELS==\"$port\", SYMLINK+=\"switchboard-printer\", GROUP=\"dialout\", MODE=\"0660\", ENV{ID_MM_DEVICE_IGNORE}=\"1\""
        fi
        for n in 1 2; do
            port="$(conf_get "SWITCHBOARD_HEADSET${n}_USB")"
            [ -n "$port" ] || continue
            valid_port "$port" || die "SWITCHBOARD_HEADSET${n}_USB=$port: expected a USB port such as 1-1.3"
            echo
            echo "# Position $n's USB headset, on USB port $port: ALSA card id headset$n."
            echo "SUBSYSTEM==\"sound\", KERNEL==\"card*\", KERNELS==\"$port\", ATTR{id}=\"headset$n\""
        done
    } > "$RULES.new"
    chmod 0644 "$RULES.new"
    mv "$RULES.new" "$RULES"
    # USB voice modems (analog trunks): ModemManager kept off them, the dialout group.
    install -m 0644 "$SRC/linux/60-switchboard-modems.rules" "$MODEM_RULES"

    # PCMs named as the site file names headsets, on the cards the rules name.
    local pcms=""
    for n in 1 2; do
        [ -n "$(conf_get "SWITCHBOARD_HEADSET${n}_USB")" ] || continue
        pcms+="pcm.headset$n {
    type plug
    slave.pcm \"hw:CARD=headset$n,DEV=0\"
    hint { show on description \"Switchboard position $n's headset (USB port $(conf_get "SWITCHBOARD_HEADSET${n}_USB"))\" }
}
"
    done
    if [ -n "$pcms" ]; then
        mkdir -p "$(dirname "$ALSA_CONF")"
        printf '# Written by scripts/install-pi.sh: the headsets by the names the site file uses.\n%s' "$pcms" > "$ALSA_CONF"
        chmod 0644 "$ALSA_CONF"
    else
        rm -f "$ALSA_CONF"
    fi
    if udev_running; then
        udevadm control --reload
        udevadm trigger --action=add --subsystem-match=tty --subsystem-match=sound --subsystem-match=gpio || true
    else
        say "udev is not running here: the rules apply at the next boot"
    fi
}

# -- the unit ------------------------------------------------------------------------
install_unit() {
    local dir="$R/etc/systemd/system"
    mkdir -p "$dir/multi-user.target.wants"
    install -m 0644 -o root -g root "$SRC/scripts/service/$UNIT" "$dir/$UNIT"
    if systemd_running; then
        systemctl daemon-reload
        systemctl enable "$UNIT" >/dev/null 2>&1
        if systemctl is-active --quiet "$UNIT"; then
            systemctl restart "$UNIT" && say "service restarted" || say "the service failed to restart: journalctl -u switchboard"
        else
            systemctl start "$UNIT" && say "service started" || say "the service failed to start: journalctl -u switchboard"
        fi
    else
        # What systemctl enable does, by hand: systemd is not running here (a chroot, an
        # image being built, a container), so nothing can be started now.
        ln -sfn "/etc/systemd/system/$UNIT" "$dir/multi-user.target.wants/$UNIT"
        say "systemd is not running here (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)): the service is installed and enabled, and starts at the next boot"
    fi
}

install_kiosk() {
    local want="$kiosk" desktop="$R/etc/xdg/autostart/switchboard-kiosk.desktop"
    if [ -z "$want" ]; then
        [ -f "$desktop" ] && want=yes || want=no      # keep what an earlier run chose
    fi
    if [ "$want" = yes ]; then
        mkdir -p "$(dirname "$desktop")"
        install -m 0644 -o root -g root "$SRC/scripts/service/switchboard-kiosk.desktop" "$desktop"
        say "kiosk: the board's view opens full screen when the desktop starts"
        if [ -z "$R" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
            say "kiosk: no chromium installed yet: sudo apt install chromium"
        fi
    elif [ -f "$desktop" ]; then
        rm -f "$desktop"
        say "kiosk: removed"
    fi
}

# -- uninstall -------------------------------------------------------------------------
uninstall() {
    if systemd_running; then
        systemctl disable --now "$UNIT" >/dev/null 2>&1 || true
    fi
    rm -f "$R/etc/systemd/system/multi-user.target.wants/$UNIT" "$R/etc/systemd/system/$UNIT"
    if systemd_running; then systemctl daemon-reload; fi
    rm -f "$RULES" "$MODEM_RULES" "$ALSA_CONF" "$R/etc/xdg/autostart/switchboard-kiosk.desktop"
    if udev_running; then udevadm control --reload; fi
    local link
    for link in "$R/usr/local/bin/"switchboard*; do
        [ -L "$link" ] && case "$(readlink "$link")" in "$PREFIX"/*) rm -f "$link" ;; esac
    done
    rm -rf "$R$PREFIX" "$R$PREFIX.new" "$R$PREFIX.old"
    say "removed the service, $PREFIX, the udev rules and the kiosk"
    if [ "$purge" = 1 ]; then
        rm -rf "$R/etc/switchboard" "$R/var/lib/switchboard"
        if has_user "$USER_NAME"; then userdel "${prefix_opt[@]}" "$USER_NAME"; fi
        if has_group "$USER_NAME"; then groupdel "${prefix_opt[@]}" "$USER_NAME"; fi
        say "purged: /etc/switchboard, /var/lib/switchboard and the $USER_NAME user"
    else
        say "kept /etc/switchboard, /var/lib/switchboard (the records) and the $USER_NAME user: --uninstall --purge removes them"
    fi
}

list_usb() {
    local dev port
    for dev in /dev/ttyUSB* /dev/ttyACM* /dev/snd/controlC*; do
        [ -e "$dev" ] || continue
        port="$(udevadm info -q path -n "$dev" 2>/dev/null | tr / '\n' | grep -E '^[0-9]+-[0-9]+(\.[0-9]+)*$' | tail -1)"
        echo "$dev  USB port ${port:-?}  $(udevadm info -q property -n "$dev" 2>/dev/null | sed -n 's/^ID_MODEL=//p' | head -1)"
    done
}

# Options checked before anything is changed.
check_options() {
    if [ -n "$board" ] && [ ! -f "$board" ] && [ ! -f "$SRC/boards/$board.toml" ]; then
        die "--board $board: no such file, and no shipped board of that name in $SRC/boards"
    fi
    [ -z "$site" ] || [ -f "$site" ] || die "--site $site: no such file"
    [ -z "$printer_usb" ] || valid_port "$printer_usb" \
        || die "SWITCHBOARD_PRINTER_USB=$printer_usb: expected a USB port such as 1-1.2"
    local h
    for h in "${headset_usb[@]}"; do
        case "$h" in
            [12]=?*) valid_port "${h#*=}" || die "--headset-usb $h: expected a USB port such as 1-1.3 after the =" ;;
            *) die "--headset-usb $h: expected POSITION=PORT with position 1 or 2, e.g. 1=1-1.3" ;;
        esac
    done
}

# -- main ------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run it as root: sudo $0 $*"
case "$action" in
    list-usb) list_usb ;;
    uninstall) uninstall ;;
    install)
        check_options
        make_users
        install_project
        install_config
        install_udev
        install_kiosk
        install_unit
        say "done: systemctl status switchboard; journalctl -u switchboard; switchboard-diag status"
        ;;
esac
