"""The hardware building blocks' schematics, drawn with schemdraw.

``switchboard-hardware schematics`` writes one SVG per block into
``hardware/blocks/``; ``hardware/BLOCKS.md`` explains each. The values here
(resistors, parts) are the ones the bills of materials list.
"""

from __future__ import annotations

from pathlib import Path

import schemdraw
import schemdraw.elements as elm
import schemdraw.flow as flow

from firmware.panel.gpio import OE_HZ

FONT = 12


def _drawing(fmt: str):
    d = schemdraw.Drawing(canvas="matplotlib" if fmt == "png" else "svg", show=False)
    # The SVG backend sizes the page from the parts, not the text: leave room for labels.
    d.config(fontsize=FONT, unit=2.5, margin=2.5, bgcolor="white")
    return d


def lamp_led(d):
    """A lamp as an LED straight on a header pin."""
    d += elm.Label().label("GPIO18 (pin 12)\nlamp output,\nactive high", loc="left", halign="right")
    d += elm.Dot(open=True)
    d += elm.Resistor().right().label("680 Ω").label("R1", loc="bottom")
    d += elm.LED().down().label("low-current LED\n~2 mA (Pi 4 default\ndrive is 4 mA)", loc="bottom")
    d += elm.Ground()


def lamp_24v(d):
    """24 V bulbs: a 74HC595 output drives one input of a ULN2803."""
    sr = elm.Ic(pins=[elm.IcPin("QA", pin="15", side="right", anchorname="QA"),
                      elm.IcPin("QB", pin="1", side="right", anchorname="QB"),
                      elm.IcPin("...", side="right"),
                      elm.IcPin("QH", pin="7", side="right", anchorname="QH"),
                      elm.IcPin("VCC", pin="16", side="top", anchorname="VCC", pos=0.35),
                      elm.IcPin("GND", pin="8", side="bottom", anchorname="GND", pos=0.35)],
                size=(3.2, 4.4), label="74HC595\n(3.3 V)")
    d += sr
    uln = elm.Ic(pins=[elm.IcPin("1B", pin="1", side="left", anchorname="B1"),
                       elm.IcPin("2B", pin="2", side="left", anchorname="B2"),
                       elm.IcPin("...", side="left"),
                       elm.IcPin("8B", pin="8", side="left", anchorname="B8"),
                       elm.IcPin("1C", pin="18", side="right", anchorname="C1"),
                       elm.IcPin("2C", pin="17", side="right", anchorname="C2"),
                       elm.IcPin("...", side="right"),
                       elm.IcPin("8C", pin="11", side="right", anchorname="C8"),
                       elm.IcPin("COM", pin="10", side="top", anchorname="COM", pos=0.5),
                       elm.IcPin("GND", pin="9", side="bottom", anchorname="GND", pos=0.5)],
                 size=(3.6, 4.4), label="ULN2803A").at((7, 0)).anchor("B1")
    d += uln
    # 74HC595 pins are listed bottom-up by schemdraw; join by anchor.
    d += elm.Wire("-").at(sr.QA).to(uln.B1)
    d += elm.Wire("-").at(sr.QB).to(uln.B2)
    d += elm.Wire("-").at(sr.QH).to(uln.B8)
    d += elm.Line().at(sr.VCC).up(0.8)
    d += elm.Vdd().label("3V3")
    d += elm.Line().at(sr.GND).down(0.6)
    d += elm.Ground()
    d += elm.Line().at(uln.GND).down(0.6)
    d += elm.Ground().label("star ground point", loc="right")
    top = 6.0
    for i, pin in enumerate(("C1", "C2", "C8")):
        start = getattr(uln, pin)
        x = start[0] + 1.6 + 2.6 * i
        d += elm.Line().at(start).tox(x)
        d += elm.Line().toy(top - 2.2)
        d += elm.Lamp().up().toy(top).label(f"bulb {pin[1]}", loc="bottom")
    d += elm.Line().at((uln.C1[0] + 1.6, top)).tox(uln.C1[0] + 1.6 + 5.2)
    d += elm.Dot()
    bus = d.here
    # The board's 24 V arrives already fused: its T2A sits at the distribution point, so
    # the 20 AWG pair and the board's terminal are downstream of it (a fuse protects only
    # what is downstream of it).
    d += elm.Line().up(0.8)
    d += elm.Dot(open=True).label("board's 24 V\nscrew terminal", loc="left", halign="right")
    d += elm.Line().up(1.6).label("20 AWG pair", loc="bottom", halign="left")
    d += elm.Fuse().up(1.8).label("T2A, one per board, in its\nfuse terminal at the\ndistribution point",
                                  loc="bottom", halign="left")
    d += elm.Vdd().label("+24 V bus from the main fuse (20 A)")
    d += elm.Line().at(bus).right(1.4)
    d += elm.Capacitor(polar=True).down(1.6).label("220 µF\n50 V bulk", loc="bottom")
    d += elm.Ground()
    # Keep-alive: a resistor across the driver output pre-heats the dark bulb.
    ka = uln.C1
    x = ka[0] + 1.6
    d += elm.Dot().at((x, ka[1]))
    d += elm.Resistor().down(2.4).at((x, ka[1])).label("4.7 kΩ ½ W\nkeep-alive\n(one per lamp)", loc="bottom")
    d += elm.Ground()
    d += elm.Line().at(uln.COM).toy(top)
    d += elm.Line().tox(uln.C1[0] + 1.6)
    d += elm.Label().at((uln.COM[0], top + 0.3)).label("COM to +24 V\n(clamp diodes)", halign="center")


def key_inputs(d):
    """(a) A key on a header pin; (b) a key on a 74HC165 input."""
    # (a) header pin, internal pull-up, series protection resistor.
    d += elm.Label().at((0, 1.2)).label("(a) key on a header pin", halign="left", valign="bottom")
    d += elm.Ground().at((0.5, -4))
    d += elm.Line().at((0.5, -4)).up(0.5)
    d += elm.Button().up().label("key", loc="bottom")
    d += elm.Line().up(0.5)
    d += elm.Resistor().right().label("1 kΩ\nprotection")
    d += elm.Dot(open=True).label("GPIO4 (pin 7)\ninternal pull-up 33-73k\nboard file: \"^!GPIO4\"",
                                  loc="right", halign="left")
    # (b) chain input, external pull-up, optional RC filter.
    x = 0.5
    y = -7
    d += elm.Label().at((0, y + 1.2)).label("(b) key on a 74HC165 input", halign="left", valign="bottom")
    d += elm.Vdd().at((x + 4, y)).label("3V3")
    d += elm.Resistor().down().at((x + 4, y)).label("10 kΩ pull-up", loc="bottom")
    node = d.here
    d += elm.Dot()
    d += elm.Line().right(2.5)
    d += elm.Dot(open=True).label("input A of 74HC165\n(pin 11)\nboard file: \"!keys:0\"",
                                  loc="right", halign="left")
    d += elm.Line().at(node).left(2.5)
    d += elm.Button().down().label("key", loc="bottom")
    d += elm.Ground()
    d += elm.Line().at(node).down(0.01)
    d += elm.Capacitor().down().at((node[0] + 1.5, node[1])).label("100 nF\n(optional,\nlong runs)",
                                                                       loc="bottom")
    d += elm.Ground()
    d += elm.Line().at(node).tox(node[0] + 1.5)


def _hc165(label, anchor_at=None):
    pins = [elm.IcPin("SH/LD", pin="1", side="left", anchorname="LD"),
            elm.IcPin("CLK", pin="2", side="left", anchorname="CLK"),
            elm.IcPin("CLK INH", pin="15", side="left", anchorname="INH"),
            elm.IcPin("SER", pin="10", side="left", anchorname="SER"),
            elm.IcPin("A..H", pin="11-14,3-6", side="top", anchorname="IN", pos=0.3),
            elm.IcPin("QH", pin="9", side="right", anchorname="QH"),
            elm.IcPin("VCC", pin="16", side="top", anchorname="VCC", pos=0.75),
            elm.IcPin("GND", pin="8", side="bottom", anchorname="GND", pos=0.5)]
    return elm.Ic(pins=pins, size=(6, 4), label=label)


def chain_165(d):
    """Two 74HC165s of a key chain, the marker chip at its far end, and the Pi's side."""
    u1 = _hc165("U1 (chip 0)\n74HC165\nbits 0-7")
    u2 = _hc165("U2 (chip 1)\n74HC165\nbits 8-15")
    d += (u2 := u2.at((0, 0)))
    d += (u1 := u1.at((11, 0)))
    # Pi signals come in from the right-hand side of the drawing.
    pi_x = 22
    d += elm.Line().at(u1.QH).right(1.0)
    d += elm.Resistor().right(2.2).label("33 Ω", loc="top")
    qh = d.here
    d += elm.Dot()
    d += elm.Line().tox(pi_x)
    d += elm.Dot(open=True).label("GPIO9 data\n(pin 21)", loc="right", halign="left")
    d += elm.Resistor().at(qh).up(1.6).label("10 kΩ", loc="bottom")
    d += elm.Vdd().label("3V3")
    bus_y = {"LD": -3.2, "CLK": -4.4}
    for name, gpio in (("LD", "GPIO7 load (pin 26)"), ("CLK", "GPIO11 clock (pin 23)")):
        y = bus_y[name]
        for u in (u2, u1):
            start = getattr(u, name)
            d += elm.Line().at(start).left(0.5 + (0.3 if name == "CLK" else 0))
            d += elm.Line().toy(y)
            d += elm.Dot()
        d += elm.Line().at((u2.LD[0] - 0.5 - (0.3 if name == "CLK" else 0), y)).tox(pi_x - 4.5)
        d += elm.Dot()
        node = d.here
        d += elm.Resistor().right(2.2).label("33 Ω", loc="top")
        d += elm.Line().tox(pi_x)
        d += elm.Dot(open=True).label(gpio, loc="right", halign="left")
        if name == "CLK":
            d += elm.Resistor().at(node).down(1.5).label("10 kΩ pull-down\n(SH/LD has one too)", loc="bottom")
            d += elm.Ground()
    # Cascade: U2's QH feeds U1's SER; the marker chip's QH feeds the last key chip's SER.
    d += elm.Line().at(u2.QH).right(1.2)
    d += elm.Line().toy(u1.SER[1])
    d += elm.Line().tox(u1.SER[0])
    d += elm.Line().at(u2.SER).left(1.4)
    d += elm.Dot(open=True).label("QH of the next chip ... of the marker chip:\n"
                                  "a 74HC165 after the last key chip, inputs\n"
                                  "A..H strapped 1,0,1,0,0,1,0,1 (0xA5), SER to GND;\n"
                                  "a SER fed from another board: 10k to 3V3", loc="left", halign="right")
    for u in (u1, u2):
        d += elm.Line().at(u.INH).left(0.2)
        d += elm.Ground(lead=False).right().scale(0.6)
        d += elm.Line().at(u.VCC).up(0.7)
        d += elm.Vdd().label("3V3 + 100 nF")
        d += elm.Line().at(u.GND).down(0.4)
        d += elm.Ground()
        d += elm.Line().at(u.IN).up(0.7)
        d += elm.Label().label("8 keys, each\n10k to 3V3", loc="top")
    d += elm.Label().at((6, -7.6)).label(
        "load held low for settle_us samples every key; then each clock shifts one bit towards the Pi.\n"
        "On a chain board, SH/LD and CLK arrive through a 74HC14 (two inverters each) and QH leaves "
        "through two more (see ribbon.svg).", halign="center")


def _hc595(label):
    pins = [elm.IcPin("SER", pin="14", side="left", anchorname="SER"),
            elm.IcPin("SRCLK", pin="11", side="left", anchorname="SRCLK"),
            elm.IcPin("RCLK", pin="12", side="left", anchorname="RCLK"),
            elm.IcPin("OE", pin="13", side="left", anchorname="OE", invert=True),
            elm.IcPin("SRCLR", pin="10", side="left", anchorname="CLR", invert=True),
            elm.IcPin("QA..QH", pin="15,1-7", side="bottom", anchorname="OUT", pos=0.7),
            elm.IcPin("GND", pin="8", side="bottom", anchorname="GND", pos=0.25),
            elm.IcPin("QH'", pin="9", side="right", anchorname="QHS"),
            elm.IcPin("VCC", pin="16", side="top", anchorname="VCC", pos=0.6)]
    return elm.Ic(pins=pins, size=(5, 4.4), label=label)


def chain_595(d):
    """Two 74HC595s of a lamp chain: bits shifted in, latched, enabled by OE (PWM), read back."""
    u1 = _hc595("U20 (chip 0)\n74HC595\nbits 0-7")
    u2 = _hc595("U21 (chip 1)\n74HC595\nbits 8-15")
    d += (u1 := u1.at((0, 0)))
    d += (u2 := u2.at((11, 0)))
    pi_x = -7.5
    d += elm.Line().at(u1.SER).left(2.0)
    ser = d.here
    d += elm.Dot()
    d += elm.Resistor().left(2.0).label("33 Ω", loc="bottom")
    d += elm.Line().tox(pi_x)
    d += elm.Dot(open=True).label("GPIO10 data (pin 19)", loc="left", halign="right")
    d += elm.Resistor().at(ser).up(1.2).label("10k", loc="bottom")
    d += elm.Vdd().label("3V3")
    for name, y, gpio in (("SRCLK", 6.0, "GPIO21 clock (pin 40)"), ("RCLK", 7.0, "GPIO8 latch (pin 24)"),
                          ("OE", 8.0, f"GPIO12 OE (pin 32)\nPWM (lgpio, {OE_HZ} Hz)")):
        off = {"SRCLK": 0.6, "RCLK": 0.9, "OE": 1.2}[name]
        for u in (u1, u2):
            d += elm.Line().at(getattr(u, name)).left(off)
            d += elm.Line().toy(y)
            d += elm.Dot()
        d += elm.Line().at((u2.SER[0] - off, y)).tox(-3.4)
        d += elm.Dot()
        node = d.here
        d += elm.Resistor().left(2.0).label("33 Ω", loc="top")
        d += elm.Line().tox(pi_x)
        d += elm.Dot(open=True).label(gpio, loc="left", halign="right")
        if name == "OE":
            d += elm.Resistor().at(node).up(1.4).label("10k pull-up:\ndark unless driven", loc="bottom")
            d += elm.Vdd().label("3V3")
    d += elm.Label().at((-5.4, 4.9)).label("SRCLK, RCLK: 10k pull-downs at each board", halign="center")
    d += elm.Line().at(u1.QHS).right(1.4)
    d += elm.Line().toy(u2.SER[1] - 2.6)
    d += elm.Line().tox(u2.SER[0] - 1.9)
    d += elm.Line().toy(u2.SER[1])
    d += elm.Line().tox(u2.SER[0])
    for u in (u1, u2):
        d += elm.Line().at(u.CLR).left(0.3)
        d += elm.Label().label("3V3", loc="left", halign="right")
        d += elm.Line().at(u.VCC).up(0.4)
        d += elm.Label().label("3V3 + 100 nF", loc="top")
        d += elm.Line().at(u.OUT).down(0.7)
        d += elm.Label().label("to a ULN2803\n(1B..8B)", loc="bottom")
        d += elm.Line().at(u.GND).down(0.5)
        d += elm.Ground()
    d += elm.Line().at(u2.QHS).right(0.8)
    d += elm.Resistor().right(2.0).label("33 Ω", loc="top")
    d += elm.Dot(open=True).label("QH' of the last chip (27th)\nback to GPIO25 (pin 22),\n10k to 3V3 there: loop-back",
                                  loc="right", halign="left")


def _line_entry(d, x0=0.0, y_tip=0.0, y_ring=-4.0):
    """Surge protection where a telephone line enters: a PTC in each leg, a sidactor across."""
    d += elm.Dot(open=True).at((x0, y_tip)).label("TIP", loc="left")
    d += elm.Thermistor().right(2.2).label("PTC TR600-150\n(600 V, 150 mA)", loc="top")
    tip = d.here
    d += elm.Dot(open=True).at((x0, y_ring)).label("RING", loc="left")
    d += elm.Thermistor().right(2.2).label("PTC TR600-150", loc="bottom")
    ring = d.here
    d += elm.Dot().at(tip)
    d += elm.DiodeTVS().at(tip).toy(y_ring).label("sidactor\nP3100SBL\n(275 V)", loc="top")
    d += elm.Dot().at(ring)
    return tip, ring


def ring_detect(d):
    """Ring detector on a bridged analog line: protected, isolated, only the ring voltage passes."""
    tip, ring = _line_entry(d)
    d += elm.Line().at(tip).right(0.6)
    d += elm.Capacitor().right().label("C1 0.47 µF\n250 V AC film")
    d += elm.Resistor().right().label("R1 22 kΩ 1 W")
    d += elm.Line().right(0.5)
    a = d.here
    opto = elm.Optocoupler().anchor("anode").at(a)
    d += opto
    d += elm.Line().at(opto.cathode).toy(ring[1])
    d += elm.Line().tox(ring[0])
    d += elm.Dot().at((a[0] - 0.8, ring[1]))
    d += elm.Diode().up().toy(a[1])
    d += elm.Dot()
    d += elm.Label().at((a[0] - 5, ring[1] - 1.6)).label(
        "U1 PC817 (5000 V RMS), D1 1N4148 across its LED for the other half-wave.\n"
        "Line side and Pi side at least 8 mm apart (creepage and clearance), no copper under the opto.",
        halign="left")
    d += elm.Line().at(opto.collector).up(0.8)
    c = d.here
    d += elm.Dot()
    d += elm.Resistor().up().label("10 kΩ")
    d += elm.Vdd().label("3V3")
    d += elm.Line().at(c).right(2)
    d += elm.Dot(open=True).label("GPIO (\"!GPIOn\")\nlow while ringing\n(20 Hz pulses)", loc="right",
                                  halign="left")
    d += elm.Line().at(opto.emitter).down(0.3)
    d += elm.Line().right(1.0)
    d += elm.Ground()


def loop_detect(d):
    """Loop-current detector: the customer's phone is off hook (secrecy)."""
    tip, ring = _line_entry(d, y_tip=0.0, y_ring=-5.0)
    d += elm.Label().at((ring[0] + 0.4, ring[1] - 0.7)).label("RING passes straight through to the customer's set",
                                                           halign="left")
    x0 = tip[0] + 0.8
    d += elm.Line().at(tip).tox(x0)
    top = (x0, 0.0)
    bot = (x0, -3.0)
    # Branches in parallel between top and bottom: R2, two clamp strings, the H11AA1's two LEDs.
    for dx, part, text in ((0.0, "R", "R2\n100 Ω\n1 W"), (2.0, "D+", "D2, D3"), (3.6, "D-", "D4, D5")):
        x = x0 + dx
        d += elm.Dot().at((x, top[1]))
        if part == "R":
            d += elm.Resistor().at((x, top[1])).down().toy(bot[1]).label(text, loc="bottom")
        else:
            d += elm.Line().at((x, top[1])).down(0.2)
            d1 = elm.Diode().down().length(1.3)
            d += (d1.reverse() if part == "D-" else d1)
            d2 = elm.Diode().down().length(1.3).label(text, loc="bottom")
            d += (d2.reverse() if part == "D-" else d2)
            d += elm.Line().toy(bot[1])
        d += elm.Dot()
    lx = x0 + 5.6
    d += elm.Line().at(top).tox(lx + 1.2)
    d += elm.Line().at(bot).tox(lx + 1.2)
    led1 = elm.LED().at((lx, top[1])).down().toy(bot[1])
    d += led1
    d += elm.LED().at((lx + 1.2, bot[1])).up().toy(top[1])
    d += elm.Dot().at((lx, top[1]))
    d += elm.Dot().at((lx, bot[1]))
    q = elm.NpnPhoto().anchor("base").at((lx + 3.2, (top[1] + bot[1]) / 2)).right()
    d += q
    d += elm.EncircleBox([led1, q], padx=0.5, pady=0.4).linestyle("--")
    d += elm.Label().at((lx + 1.8, bot[1] - 1.7)).label("U2 H11AA1: two LEDs back to back (AC input)",
                                                        halign="center")
    d += elm.Line().at((x0 + 2.8, bot[1])).down(1.0)
    d += elm.Dot(open=True).label("TIP to the customer's set", loc="right", halign="left")
    d += elm.Line().at(q.collector).up(0.8)
    c = d.here
    d += elm.Dot()
    d += elm.Resistor().up().label("10 kΩ")
    d += elm.Vdd().label("3V3")
    d += elm.Line().at(c).right(2.0)
    d += elm.Dot(open=True).label("GPIO (\"!GPIOn\")\nlow while loop current\nflows (off hook)",
                                  loc="right", halign="left")
    d += elm.Line().at(q.emitter).down(0.4)
    d += elm.Ground()
    d += elm.Label().at((x0, -7.6)).label(
        "R2 shunts the first ~12 mA; the 1N4007 strings clamp the LEDs to ~1.4 V during ringing and surges.\n"
        "Line side and Pi side at least 8 mm apart (creepage and clearance), no copper under the opto.",
        halign="left")


def headsets(d):
    """One USB audio adapter per position, each its own ALSA card, named by its USB port."""
    d.config(fontsize=13)
    pi = flow.Box(w=3.4, h=4).label("Raspberry Pi\nUSB ports\n\nudev names the\ncards by port:\n"
                                    "headset1, headset2").at((0, 0))
    d += pi
    for i, y in enumerate((1.2, -1.2), start=1):
        d += elm.Line().at((3.4, y)).right(1.8).label(f"USB port {i}", loc="top")
        d += (ad := flow.Box(w=3.6, h=1.6).anchor("W").label(f"USB audio adapter\nposition {i}\n(C-Media CM108)"))
        d += elm.Line().at(ad.E).right(1.8).label("3.5 mm\nmic + ear", loc="top")
        d += flow.Box(w=3.4, h=1.6).anchor("W").label(f"Headset {i}\n(TRRS, or split\nmic/ear plugs)")
    d += elm.Label().at((0, -3.0)).label(
        "Pi Zero 2 W: one micro-USB port, so a USB hub (powered) between the Pi and both adapters.\n"
        "Keep adapters and cords apart from the 24 V lamp wiring.", halign="left")


def printer(d):
    """The slip printer's RS-232 on the Pi's UART through a MAX3232, charge pump drawn."""
    ic = elm.Ic(pins=[elm.IcPin("T1IN", pin="11", side="left", anchorname="T1IN"),
                      elm.IcPin("R1OUT", pin="12", side="left", anchorname="R1OUT"),
                      elm.IcPin("R2OUT", pin="9", side="left", anchorname="R2OUT"),
                      elm.IcPin("T1OUT", pin="14", side="right", anchorname="T1OUT"),
                      elm.IcPin("R1IN", pin="13", side="right", anchorname="R1IN"),
                      elm.IcPin("R2IN", pin="8", side="right", anchorname="R2IN"),
                      elm.IcPin("C1+", pin="1", side="top", anchorname="C1P", pos=0.1),
                      elm.IcPin("C1-", pin="3", side="top", anchorname="C1N", pos=0.3),
                      elm.IcPin("C2+", pin="4", side="top", anchorname="C2P", pos=0.5),
                      elm.IcPin("C2-", pin="5", side="top", anchorname="C2N", pos=0.7),
                      elm.IcPin("VCC", pin="16", side="top", anchorname="VCC", pos=0.9),
                      elm.IcPin("V+", pin="2", side="bottom", anchorname="VP", pos=0.2),
                      elm.IcPin("V-", pin="6", side="bottom", anchorname="VN", pos=0.5),
                      elm.IcPin("GND", pin="15", side="bottom", anchorname="GND", pos=0.85)],
                size=(8, 4.4), label="MAX3232\n(3.3 V)")
    d += ic.at((0, 0))
    for pin, text in (("T1IN", "GPIO14 TXD (pin 8)"), ("R1OUT", "GPIO15 RXD (pin 10)"),
                      ("R2OUT", "free GPIO: printer busy\n(optional)")):
        d += elm.Line().at(getattr(ic, pin)).left(1.5)
        d += elm.Dot(open=True).label(text, loc="left", halign="right")
    for pin, text in (("T1OUT", "DB9 pin 2: printer RXD"), ("R1IN", "DB9 pin 3: printer TXD"),
                      ("R2IN", "DB9 pin 4 or 6: DTR/DSR busy")):
        d += elm.Line().at(getattr(ic, pin)).right(1.5)
        d += elm.Dot(open=True).label(text, loc="right", halign="left")
    # Charge pump: C1 across C1+/C1-, C2 across C2+/C2-, C3 from V+ and C4 from V- to GND.
    top = ic.C1P[1] + 1.2
    for a, b, name in (("C1P", "C1N", "C1"), ("C2P", "C2N", "C2")):
        pa, pb = getattr(ic, a), getattr(ic, b)
        d += elm.Line().at(pa).toy(top)
        d += elm.Capacitor().at((pa[0], top)).tox(pb[0]).label(f"{name}\n100 nF", loc="top")
        d += elm.Line().toy(pb[1])
    d += elm.Line().at(ic.VCC).up(0.5)
    d += elm.Vdd().label("3V3\n(C5 100 nF to GND)")
    for pin, name in (("VP", "C3\n100 nF"), ("VN", "C4\n100 nF")):
        d += elm.Capacitor().at(getattr(ic, pin)).down(1.4).label(name, loc="top")
        d += elm.Ground()
    d += elm.Line().at(ic.GND).down(0.5)
    d += elm.Ground().label("GND and DB9 pin 5", loc="right")


def printer_ttl(d):
    """A TTL (5 V logic) slip printer: 3.3 V up through a 74AHCT125, 5 V down through a divider."""
    buf = elm.Ic(pins=[elm.IcPin("1A", pin="2", side="left", anchorname="A"),
                       elm.IcPin("1OE", pin="1", side="left", anchorname="OE", invert=True),
                       elm.IcPin("1Y", pin="3", side="right", anchorname="Y"),
                       elm.IcPin("VCC", pin="14", side="top", anchorname="VCC", pos=0.5),
                       elm.IcPin("GND", pin="7", side="bottom", anchorname="GND", pos=0.5)],
                 size=(3.4, 2.6), label="74AHCT125\n(VCC 5 V,\nTTL inputs)")
    d += buf.at((0, 0))
    d += elm.Line().at(buf.A).left(2.0)
    d += elm.Dot(open=True).label("GPIO14 TXD (pin 8)\n3.3 V out", loc="left", halign="right")
    d += elm.Line().at(buf.OE).left(0.4)
    d += elm.Ground(lead=False).right().scale(0.6)
    d += elm.Line().at(buf.VCC).up(0.5)
    d += elm.Vdd().label("5 V (header pin 2) + 100 nF")
    d += elm.Line().at(buf.GND).down(0.4)
    d += elm.Ground()
    d += elm.Line().at(buf.Y).right(1.2)
    d += elm.Resistor().right(2.0).label("100 Ω", loc="top")
    d += elm.Dot(open=True).label("printer RXD (5 V TTL)", loc="right", halign="left")
    # Down: the printer's 5 V TXD through a 10k/18k divider: 5 V x 18/28 = 3.2 V.
    y = -4.2
    d += elm.Dot(open=True).at((7.6, y)).label("printer TXD (5 V TTL)", loc="right", halign="left")
    d += elm.Resistor().left(2.4).label("10 kΩ", loc="top")
    node = d.here
    d += elm.Dot()
    d += elm.Resistor().down(1.8).label("18 kΩ", loc="bottom")
    d += elm.Ground()
    d += elm.Line().at(node).tox(-2.0)
    d += elm.Dot(open=True).label("GPIO15 RXD (pin 10)\n5 V x 18/28 = 3.2 V max", loc="left", halign="right")
    d += elm.Label().at((-2.0, y - 3.0)).label(
        "Busy/DTR from a TTL printer: a second 10k/18k divider to a free GPIO. GND to the printer's GND.\n"
        "Never wire a 5 V TXD straight to GPIO15.", halign="left")


def rtc(d):
    """The DS3231 real-time clock on I2C1: the time survives a power cut with no network."""
    ic = elm.Ic(pins=[elm.IcPin("VIN", side="left", anchorname="VIN"),
                      elm.IcPin("GND", side="left", anchorname="GND"),
                      elm.IcPin("SDA", side="left", anchorname="SDA"),
                      elm.IcPin("SCL", side="left", anchorname="SCL"),
                      elm.IcPin("32K", side="right", anchorname="K32"),
                      elm.IcPin("SQW", side="right", anchorname="SQW"),
                      elm.IcPin("VBAT", side="bottom", anchorname="BAT", pos=0.5)],
                size=(4, 4), label="DS3231\nbreakout\n(Adafruit 3013)")
    d += ic.at((0, 0))
    for pin, text in (("VIN", "3V3 (pin 1)"), ("GND", "GND (pin 9)"), ("SDA", "GPIO2 SDA1 (pin 3)"),
                      ("SCL", "GPIO3 SCL1 (pin 5)")):
        d += elm.Line().at(getattr(ic, pin)).left(2.0)
        d += elm.Dot(open=True).label(text, loc="left", halign="right")
    d += elm.BatteryCell().at(ic.BAT).down(1.4).label("CR1220 3 V\n(on the breakout)", loc="bottom")
    d += elm.Ground()
    for pin in ("K32", "SQW"):
        d += elm.Line().at(getattr(ic, pin)).right(0.8)
        d += elm.Label().label("not connected", loc="right", halign="left")
    d += elm.Label().at((-4.5, -3.6)).label(
        "/boot/firmware/config.txt: dtoverlay=i2c-rtc,ds3231\n"
        "The Pi's own 1.8 kΩ pull-ups on GPIO2/3 serve the bus; the CR1220 keeps time while off.",
        halign="left")


def ribbon(d):
    """The chain signals between boards: buffered, terminated, grounds between signals."""
    d.config(fontsize=12)
    lvc = flow.Box(w=3.4, h=3.6).label("interface board\n74LVC244\n(3.3 V, from the\nPi's 3V3)").at((0, 0))
    d += lvc
    d += elm.Line().at((lvc.W[0] - 2.4, lvc.W[1])).tox(lvc.W[0])
    d += elm.Label().at((lvc.W[0] - 2.6, lvc.W[1])).label("Pi GPIO\n(10k pull-\ndowns;\nOE: 10k up)", halign="right")
    d += elm.Resistor().at(lvc.E).right(2.2).label("33 Ω each", loc="top")
    d += elm.Line().right(0.6)
    d += (rib := flow.Box(w=4.4, h=5.6).anchor("W").label(
        "10-way ribbon\n1 GND\n2 SH/LD or SRCLK\n3 GND\n4 CLK or RCLK\n5 GND\n6 data (SER / QH)\n"
        "7 GND\n8 OE (lamps) / n.c.\n9 3V3 logic\n10 GND"))
    d += elm.Line().at(rib.E).right(0.8)
    d += (hc := flow.Box(w=3.8, h=3.6).anchor("W").label(
        "chain board\n74HC14: each line\nthrough two\ninverters\n(Schmitt)"))
    d += elm.Line().at(hc.E).right(1.2)
    d += flow.Box(w=3.6, h=3.6).anchor("W").label(
        "7 x 74HC165\nor 4 x 74HC595\n+ ULN2803\n100 µF bulk\n100 nF per chip")
    d += elm.Label().at((0, -4.6)).label(
        "At each chain board: 10k pull-downs on SH/LD, CLK, SRCLK, RCLK before the 74HC14; "
        "10k pull-up on OE and on a SER "
        "that comes from another board.\nData leaving a board (QH, QH') goes through two 74HC14 gates and 33 Ω. "
        "24 V never shares this connector: it has its own screw terminal.", halign="left")


def power(d):
    """Mains, 24 V with its fuses, the Pi's supply, the logic 3.3 V, one star ground."""
    d.config(fontsize=13)
    inlet = flow.Box(w=3.8, h=1.8).label("IEC inlet\nswitch + T6.3A fuse").at((-5, -1))
    psu5 = flow.Box(w=3.6, h=1.6).label("5.1 V 3 A\nUSB-C supply").at((0, 3))
    pi = flow.Box(w=3.6, h=1.6).label("Raspberry Pi").at((7, 3))
    ldo = flow.Box(w=4.0, h=1.6).label("LM1117-3.3\nlogic 3V3 (TAS-100)").at((18, 3))
    psu24 = flow.Box(w=3.6, h=1.8).label("24 V supply\n(lamps only)").at((0, -1))
    dist = flow.Box(w=4.4, h=1.8).label("main fuse 20 A,\n12 AWG, then a T2A\nfuse terminal per board").at((11.5, -1))
    uln = flow.Box(w=4.4, h=1.8).label("lamp boards: each\non its own T2A,\nULN2803s + bulbs").at((18, -1))
    for b in (inlet, psu5, pi, ldo, psu24, dist, uln):
        d += b
    d += flow.Arrow().at(inlet.E).to(psu24.W).label("18 AWG", loc="top")
    d += flow.Arrow().at(psu5.E).to(pi.W).label("USB-C", loc="top")
    d += flow.Arrow().at(pi.E).to(ldo.W).label("5 V, pin 2", loc="top")
    d += flow.Arrow().at(psu24.E).to(dist.W).label("+24 V", loc="top")
    d += flow.Arrow().at(dist.E).to(uln.W).label("20 AWG", loc="top")
    d += elm.Line().at(ldo.S).toy(uln.N[1])
    d += elm.Label().at((ldo.S[0] + 0.2, 1.6)).label("3V3 logic, QA..QH", halign="left")
    star = (9, -5)
    d += elm.Dot().at(star)
    d += elm.Ground().at(star)
    d += elm.Label().at((star[0] + 0.6, star[1] - 0.7)).label(
        "star ground point: one joint, at the 24 V distribution point's 0 V block", halign="left")
    for b in (pi, uln, psu24):
        d += elm.Line().at(b.S).toy(star[1])
        d += elm.Line().tox(star[0])
    d += elm.Label().at((-5, -7)).label(
        "Mains earth to the cabinet frame and the 24 V supply's earth terminal. Never feed 5 V or 24 V into a "
        "GPIO; 24 V runs on its own\nterminals and wires, never on the logic ribbons. The desk board's chain "
        "runs from the Pi's 3V3 pin; the TAS-100's from the LM1117.", halign="left")


def panel_desk(d):
    """The desk board's panel: where each lamp and key sits (from boards/desk.toml)."""
    from firmware.config.board import find_board, load_board
    d.config(fontsize=11)
    board = load_board(find_board("desk"))      # the names and numbers cannot drift from it
    lines = [(ln.number, ln.label) for ln in board.lines]
    d += flow.Box(w=26, h=15).at((-1, 2)).anchor("NW")
    d += elm.Label().at((12, 1.3)).label("Desk board panel (top view), about 300 x 170 mm", halign="center")
    for i, (number, label) in enumerate(lines):
        x = 1.5 + i * 3.9
        if board.line(number).message_lamp:
            d += elm.Dot(open=True, radius=0.3).at((x + 1.2, -0.4))
            d += elm.Label().at((x + 1.2, 0.4)).label("msg lamp\n(green)", halign="center")
        d += elm.Dot(open=True, radius=0.35).at((x, -1.4))
        d += elm.Label().at((x, -2.3)).label(f"line {number}\nlamp (green)", halign="center")
        d += elm.Dot(radius=0.45).at((x, -3.9))
        d += elm.Label().at((x, -5.1)).label(f"line {number} key\n{label}", halign="center")
    for p, x in ((1, 1.5), (2, 13.2)):
        d += elm.Label().at((x, -6.4)).label(f"position {p}:", halign="left")
        for k, name in enumerate(("hold", "release", "stamp")):
            d += elm.Dot(radius=0.35).at((x + 3.4 + k * 2.2, -6.4))
            d += elm.Label().at((x + 3.4 + k * 2.2, -5.6)).label(name, halign="center")
        for r, row in enumerate(("1 2 3", "4 5 6", "7 8 9", "* 0 #")):
            for c, key in enumerate(row.split()):
                d += elm.Dot(radius=0.3).at((x + 1.0 + c * 1.2, -7.8 - r * 1.0))
                d += elm.Label().at((x + 1.5 + c * 1.2, -7.8 - r * 1.0)).label(key, halign="left")
        d += elm.Label().at((x + 5.0, -9.0)).label(f"dial pad {p}\n(12 keys)", halign="left")
    d += elm.Dot(open=True, radius=0.35).at((23.0, -1.4))
    d += elm.Label().at((23.0, -2.3)).label("FAULT\n(red)", halign="center")
    for x, name in ((10.5, "SECRECY"), (14.5, "SPLIT")):
        d += elm.Switch().at((x - 0.6, -11.6)).right(1.2)
        d += elm.Label().at((x, -12.4)).label(f"{name} toggle", halign="center")
    d += elm.Label().at((1.5, -12.2)).label("J2 to the chain board:\nbox header, pin 1 marked", halign="left")


BLOCKS = {
    "lamp-led": lamp_led,
    "lamp-24v": lamp_24v,
    "key-inputs": key_inputs,
    "chain-165": chain_165,
    "chain-595": chain_595,
    "ring-detect": ring_detect,
    "loop-detect": loop_detect,
    "headsets": headsets,
    "printer": printer,
    "printer-ttl": printer_ttl,
    "rtc": rtc,
    "ribbon": ribbon,
    "power": power,
    "panel-desk": panel_desk,
}


def draw_all(out: Path, fmt: str = "svg") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in BLOCKS.items():
        d = _drawing(fmt)
        draw(d)
        target = out / f"{name}.{fmt}"
        d.save(str(target), dpi=110)
        written.append(target)
    return written


if __name__ == "__main__":
    import sys
    for p in draw_all(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "svg"):
        print(p)
