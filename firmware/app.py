"""The composition root: command line -> one checked ``Config`` -> the daemon and its parts.

This is the only place that knows every part. It reads the options once
(``firmware.config.options``), chooses the panel (real pins or the simulated
board), builds each adapter from its slice of the config (the time clock
from ``config.timeclock``, the telephony from ``config.site``, call retention
and the scheduled calls from the data directory, ``retention_days`` and
``tz``), hands them to the ``Daemon``, and serves the control socket and
the board's view while the daemon's loop runs.

``main(argv, wall_clock=...)`` takes the wall clock the scheduled calls run
on, so a test can start the real daemon at a time of its choosing
(``tests/support/daemon_at.py``); the ``switchboard`` command uses the real one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from datetime import datetime, timezone

from firmware import logs
from firmware.config import options
from firmware.config.options import Config
from firmware.errors import ConfigError, SwitchboardError
from firmware.panel.gpio import Panel
from firmware.runtime import control, paths, systemd
from firmware.runtime.daemon import Daemon

log = logging.getLogger("switchboard")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def choose_panel(board, want_sim: bool, pin_factory: str | None):
    """Return (panel, sim, message): the real pins when there are some, else the simulator."""
    from firmware.panel.sim import SimBoard
    if not want_sim:
        from gpiozero import Device
        try:
            if pin_factory:
                os.environ["GPIOZERO_PIN_FACTORY"] = pin_factory
            factory = Device._default_pin_factory()
        except Exception as e:   # gpiozero raises BadPinFactory, ImportError, ...
            msg = (f"no GPIO on this machine ({type(e).__name__}: {e}); running the "
                   "simulated board instead (pass --sim to choose it)")
        else:
            return Panel(board, pin_factory=factory), None, None
    else:
        msg = None
    sim = SimBoard(board)
    return Panel(board, pin_factory=sim.factory, spi=sim.spi), sim, msg


def adapters(config: Config, wall_clock=utc_now, simulated: bool = False) -> list:
    """Every adapter the config asks for, each built from its slice, in starting order.

    ``simulated``: the panel is the simulated board (its clock counts as set unless
    ``--clock-source`` says otherwise).
    """
    from firmware.records.calls import JsonLinesRecords
    from firmware.records.retention import CallRetentionAdapter
    from firmware.schedule.scheduler import ScheduleAdapter
    from firmware.timeclock.adapter import TimeClockAdapter

    from firmware.timeclock import clocksource

    tc = config.timeclock
    # Stamps are only as good as the clock: checked at start and every minute, first.
    source = tc.clock_source or ("set" if simulated else "system")
    watch = clocksource.ClockWatch(
        clocksource.system_status if source == "system" else
        clocksource.fixed_status(source == "set", f"simulated clock, --clock-source {source}"))
    site = config.site
    timeclock = TimeClockAdapter(config.data_dir, printer=tc.printer, retention_days=tc.retention_days,
                                 operators=tc.operators, clock_verified=watch.is_verified,
                                 # [delivery] in the site file: e-mail and texts from the outbox
                                 delivery=site.delivery if site is not None else None,
                                 calls_file=(site.records if site is not None and site.records
                                             else config.data_dir / "calls.jsonl"))
    out = [watch, timeclock]
    if config.site is not None:
        try:
            from firmware.telephony.adapter import TelephonyAdapter
        except ImportError as e:
            raise SwitchboardError(
                f"--site needs PJSUA2 for the telephony ({e}): pip install pjsua2-python on "
                "x86_64, or build pjproject's Python binding on a Pi (README, \"On a Raspberry "
                "Pi: building pjproject\"); or start without --site") from None
        site, modems = config.site, None
        if site.modem_trunks():          # analog lines on USB modems: a gateway process each
            from firmware.telephony.modem.supervisor import ModemTrunks
            modems = ModemTrunks(site)
            site = modems.prepare(site)  # office lines bound to a modem dial out on it
        records = JsonLinesRecords(site.records or config.data_dir / "calls.jsonl")
        out.append(records)      # its fault lamp and status; started before the telephony
        telephony = TelephonyAdapter(config.board, site, port=config.sip_port,
                                     run_dir=config.data_dir / "telephony", records=records)
        telephony.screen = timeclock.screen                # blocked callers never ring
        telephony.block_rules = timeclock.block_rules      # ...refused at the front
        timeclock.refused_at_front = telephony.front_refusals
        timeclock.send_text_sip = telephony.texts.send    # texts by SIP MESSAGE (delivery)
        telephony.recording_for = timeclock.recording_for  # customers whose calls are recorded
        out.append(telephony)
        if modems is not None:
            modems.telephony = telephony
            out.append(modems)
        # Call records older than --retention-days go; their counts stay for billing.
        out.append(CallRetentionAdapter(records, config.data_dir,
                                        retention_days=config.retention_days))
    # Wake-up and reminder calls: the schedule is kept in the data directory.
    schedule = ScheduleAdapter(config.data_dir / "schedule.json", config.tz, clock=wall_clock,
                               can_place=config.site is not None)
    out.append(schedule)
    # An urgent message for a customer with an on-call contact is called out by it.
    timeclock.call_out, timeclock.call_out_state = schedule.call_out, schedule.call_out_state
    return out


def commands(config: Config) -> list:
    """Control commands that belong to no adapter: the supervisor's figures."""
    from firmware.records import figures
    return [figures.command(config.data_dir, config.tz)]


async def serve(config: Config, wall_clock=utc_now) -> int:
    """Run the daemon as ``config`` says until SIGTERM or SIGINT."""
    notifier = systemd.Notifier.from_env()      # before any child inherits $NOTIFY_SOCKET
    board = config.board
    panel, sim, msg = choose_panel(board, config.sim, config.pin_factory)
    if msg:
        log.warning("%s", msg)
    daemon = Daemon(board, panel, sim=sim, data_dir=config.data_dir)
    service = systemd.ServiceNotifier(notifier, daemon)
    try:
        for adapter in adapters(config, wall_clock, simulated=sim is not None):
            daemon.add_adapter(adapter)
        for command in commands(config):
            daemon.add_command(command)
    except BaseException:
        panel.close()
        raise
    sock_path = config.socket or paths.control_socket()
    web_runner = None
    server = None

    async def ready():
        nonlocal server, web_runner
        server = await control.serve(daemon, sock_path)
        url = None
        if config.web.enabled:
            from firmware.runtime import web
            web_runner, url = await web.start_web(daemon, config.web.host, config.web.port,
                                                  allowed_hosts=config.web.allowed_hosts)
        kind = "simulated" if sim is not None else "GPIO"
        print(f"switchboard: ready: board {board.name} ({kind}), control socket {sock_path}"
              + (f", view {url}" if url else ""), flush=True)
        service.start()     # READY=1 once every adapter is up; watchdog pets from this loop

    def stop():
        service.stopping()
        daemon.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await daemon.run(ready)
    finally:
        service.stopping()
        if server is not None:
            server.close()
            control.remove_socket(sock_path)
        if web_runner is not None:
            await web_runner.cleanup()
        panel.close()
        notifier.close()
    return 0


def main(argv=None, wall_clock=utc_now) -> int:
    """The ``switchboard`` command: a clear one-line error and exit 2, never a traceback."""
    args = options.parse_args(argv)
    logs.setup("switchboard", args.verbose)
    try:
        config = options.load(args)
        return asyncio.run(serve(config, wall_clock))
    except (ConfigError, SwitchboardError, OSError) as e:
        log.error("%s", e)
        log.debug("details", exc_info=True)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
