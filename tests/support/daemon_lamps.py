"""The real daemon on the simulated board, reporting its lamps before and after it stops.

``python -m daemon_lamps --board tas100 --sim ...`` (the ``switchboard`` command's own
arguments) runs ``firmware.app.main``. Once the panel has started it lights the fault lamp
and line 201's lamp and prints ``{"lit": [...]}`` when they show; when the daemon has
returned (a test sends SIGTERM or SIGINT) it prints ``{"after": {...}}``: each of those
lamps, whether the 74HC595s' outputs are enabled, and what the lamp pins were left as.
"""

import json
import sys
import threading
import time

from firmware import app
from firmware.panel.gpio import Panel

LAMPS = ("fault", "line-201")
seen = {}
_choose, _start = app.choose_panel, Panel.start


def choose(board, want_sim, pin_factory):
    panel, sim, msg = _choose(board, True, pin_factory)
    seen["sim"] = sim
    return panel, sim, msg


def start(self, *args, **kwargs):
    _start(self, *args, **kwargs)
    sim = seen["sim"]
    for name in LAMPS:
        self.set_lamp(name, True)

    def report():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(sim.lamp_lit(n) for n in LAMPS):
            time.sleep(0.01)
        print(json.dumps({"lit": [n for n in LAMPS if sim.lamp_lit(n)]}), flush=True)
    threading.Thread(target=report, daemon=True).start()


app.choose_panel, Panel.start = choose, start

if __name__ == "__main__":
    status = app.main(sys.argv[1:])
    sim = seen["sim"]
    board = sim.board
    pins = {name: sim.factory.pin(lamp.wire.pin).function
            for name, lamp in board.lamps.items() if lamp.wire.pin}
    print(json.dumps({"after": {
        "status": status, "lit": [n for n in LAMPS if sim.lamp_lit(n)],
        "enabled": sim.lamps_enabled,
        "oe": sim.oe_pin.function if sim.oe_pin is not None else None,
        "lamp_pins": pins}}), flush=True)
