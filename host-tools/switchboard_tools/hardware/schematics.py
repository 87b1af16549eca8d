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
    d += elm.Resistor().right().label("330 Ω").label("R1", loc="bottom")
    d += elm.LED().down().label("LED\n~4.5 mA", loc="bottom")
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
    d += elm.Line().up(0.6)
    d += elm.Vdd().label("+24 V lamp supply")
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
    d += elm.Dot(open=True).label("GPIO4 (pin 7)\ninternal pull-up ~50k\nboard file: \"^!GPIO4\"",
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
    """Two 74HC165s of a key chain and how they cascade to the Pi."""
    u1 = _hc165("U1 (chip 0)\n74HC165\nbits 0-7")
    u2 = _hc165("U2 (chip 1)\n74HC165\nbits 8-15")
    d += (u2 := u2.at((0, 0)))
    d += (u1 := u1.at((11, 0)))
    # Pi signals come in from the right-hand side of the drawing.
    pi_x = 20
    d += elm.Line().at(u1.QH).tox(pi_x)
    d += elm.Dot(open=True).label("GPIO9 data\n(pin 21)", loc="right", halign="left")
    bus_y = {"LD": -3.2, "CLK": -4.0}
    for name, gpio in (("LD", "GPIO7 load (pin 26)"), ("CLK", "GPIO11 clock (pin 23)")):
        y = bus_y[name]
        for u in (u2, u1):
            start = getattr(u, name)
            d += elm.Line().at(start).left(0.5 + (0.3 if name == "CLK" else 0))
            d += elm.Line().toy(y)
            d += elm.Dot()
        d += elm.Line().at((u2.LD[0] - 0.5 - (0.3 if name == "CLK" else 0), y)).tox(pi_x)
        d += elm.Dot(open=True).label(gpio, loc="right", halign="left")
    # Cascade: U2's QH feeds U1's SER; the last chip's SER is tied to GND.
    d += elm.Line().at(u2.QH).right(1.2)
    d += elm.Line().toy(u1.SER[1])
    d += elm.Line().tox(u1.SER[0])
    d += elm.Line().at(u2.SER).left(1.4)
    d += elm.Dot(open=True).label("last chip: SER to 3V3", loc="left", halign="right")
    for u in (u1, u2):
        d += elm.Line().at(u.INH).left(0.2)
        d += elm.Ground(lead=False).right().scale(0.6)
        d += elm.Line().at(u.VCC).up(0.7)
        d += elm.Vdd().label("3V3 + 100 nF")
        d += elm.Line().at(u.GND).down(0.4)
        d += elm.Ground()
        d += elm.Line().at(u.IN).up(0.7)
        d += elm.Label().label("8 keys, each\n10k to 3V3", loc="top")
    d += elm.Label().at((6, -5.0)).label(
        "load held low for settle_us samples every key; then each clock shifts one bit "
        "towards the Pi.", halign="center")


def _hc595(label):
    pins = [elm.IcPin("SER", pin="14", side="left", anchorname="SER"),
            elm.IcPin("SRCLK", pin="11", side="left", anchorname="SRCLK"),
            elm.IcPin("RCLK", pin="12", side="left", anchorname="RCLK"),
            elm.IcPin("OE", pin="13", side="left", anchorname="OE", invert=True),
            elm.IcPin("SRCLR", pin="10", side="left", anchorname="CLR", invert=True),
            elm.IcPin("QA..QH", pin="15,1-7", side="bottom", anchorname="OUT", pos=0.6),
            elm.IcPin("QH'", pin="9", side="right", anchorname="QHS"),
            elm.IcPin("VCC", pin="16", side="top", anchorname="VCC", pos=0.6)]
    return elm.Ic(pins=pins, size=(5, 4.4), label=label)


def chain_595(d):
    """Two 74HC595s of a lamp chain: the Pi shifts bits in, then latches them."""
    u1 = _hc595("U20 (chip 0)\n74HC595\nbits 0-7")
    u2 = _hc595("U21 (chip 1)\n74HC595\nbits 8-15")
    d += (u1 := u1.at((0, 0)))
    d += (u2 := u2.at((10, 0)))
    pi_x = -4.5
    d += elm.Line().at(u1.SER).tox(pi_x)
    d += elm.Dot(open=True).label("GPIO10 data (pin 19)", loc="left", halign="right")
    for name, y, gpio in (("SRCLK", 5.6, "GPIO21 clock (pin 40)"), ("RCLK", 6.4, "GPIO8 latch (pin 24)")):
        for u in (u1, u2):
            start = getattr(u, name)
            d += elm.Line().at(start).left(0.6 + (0.3 if name == "RCLK" else 0))
            d += elm.Line().toy(y)
            d += elm.Dot()
        d += elm.Line().at((u2.SER[0] - 0.6 - (0.3 if name == "RCLK" else 0), y)).tox(pi_x)
        d += elm.Dot(open=True).label(gpio, loc="left", halign="right")
    d += elm.Line().at(u1.QHS).right(1.4)
    d += elm.Line().toy(u2.SER[1] - 2.6)
    d += elm.Line().tox(u2.SER[0] - 1.6)
    d += elm.Line().toy(u2.SER[1])
    d += elm.Line().tox(u2.SER[0])
    for u in (u1, u2):
        d += elm.Line().at(u.OE).left(0.3)
        d += elm.Ground(lead=False).right().scale(0.6)
        d += elm.Line().at(u.CLR).left(0.3)
        d += elm.Label().label("3V3", loc="left", halign="right")
        d += elm.Line().at(u.VCC).up(0.4)
        d += elm.Label().label("3V3 + 100 nF", loc="top")
        d += elm.Line().at(u.OUT).down(0.7)
        d += elm.Label().label("to a ULN2803\n(1B..8B)", loc="bottom")
    d += elm.Line().at(u2.QHS).right(0.8)
    d += elm.Label().label("QH' of the last chip: open", loc="right", halign="left")


def ring_detect(d):
    """Ring detector on a bridged analog line: only the AC ring voltage gets through."""
    d += elm.Dot(open=True).at((0, 0)).label("TIP", loc="left")
    d += elm.Capacitor().right().label("C1 0.47 µF\n250 V film")
    d += elm.Resistor().right().label("R1 22 kΩ 1 W")
    d += elm.Line().right(0.5)
    a = d.here
    opto = elm.Optocoupler().anchor("anode").at(a)
    d += opto
    d += elm.Line().at(opto.cathode).down(1.0)
    k = d.here
    d += elm.Line().tox(0)
    d += elm.Dot(open=True).label("RING", loc="left")
    d += elm.Dot().at((a[0] - 0.8, k[1]))
    d += elm.Diode().up().toy(a[1])
    d += elm.Dot()
    d += elm.Label().at((a[0] + 1.2, a[1] - 3.4)).label("U1 PC817 optocoupler, 3750 V isolation;\n"
                                                      "D1 1N4148 across its LED takes the other half-wave")
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
    opto = elm.Optocoupler().anchor("anode").at((7.6, 0))
    d += opto
    a, k = opto.anode, opto.cathode
    d += elm.Dot(open=True).at((0, a[1])).label("TIP from exchange", loc="left")
    d += elm.Line().tox(a[0])
    d += elm.Dot(open=True).at((0, k[1] - 2.5)).label("TIP to customer's set", loc="left")
    d += elm.Line().tox(a[0])
    d += elm.Line().toy(k[1])
    # Three branches in parallel with the opto's LEDs, between its two ends.
    for x, part, text in ((1.2, "R", "R2\n100 Ω\n1 W"), (3.4, "D+", "D2, D3"), (5.6, "D-", "D4, D5")):
        d += elm.Dot().at((x, a[1]))
        if part == "R":
            d += elm.Resistor().down().toy(k[1] - 2.5).label(text, loc="bottom")
        else:
            d += elm.Line().down(0.2)
            d1 = elm.Diode().down().length(1.6)
            d += (d1.reverse() if part == "D-" else d1)
            d2 = elm.Diode().down().length(1.6).label(text, loc="bottom")
            d += (d2.reverse() if part == "D-" else d2)
            d += elm.Line().toy(k[1] - 2.5)
        d += elm.Dot()
    d += elm.Label().at((3.4, k[1] - 3.8)).label(
        "R2 shunts the first ~12 mA; the 1N4007 pairs clamp the LEDs to ~1.4 V during ringing",
        halign="center")
    d += elm.Line().at(opto.collector).up(0.8)
    c = d.here
    d += elm.Dot()
    d += elm.Resistor().up().label("10 kΩ")
    d += elm.Vdd().label("3V3")
    d += elm.Line().at(c).right(2.5)
    d += elm.Dot(open=True).label("GPIO (\"!GPIOn\")\nlow while loop current flows\n(customer off hook)",
                                  loc="right", halign="left")
    d += elm.Line().at(opto.emitter).down(0.3)
    d += elm.Line().right(1.0)
    d += elm.Ground()
    d += elm.Label().at((a[0] + 2.2, a[1] + 0.5)).label("U2 H11AA1 (AC input)", halign="right")


def headsets(d):
    """One USB audio adapter per position, each its own ALSA card."""
    d.config(fontsize=13)
    pi = flow.Box(w=3.4, h=4).label("Raspberry Pi\nUSB ports\n\nALSA cards:\npos1, pos2").at((0, 0))
    d += pi
    for i, y in enumerate((1.2, -1.2), start=1):
        d += elm.Line().at((3.4, y + 0.0 - 0 + 0)).right(1.8).label("USB", loc="top")
        d += (ad := flow.Box(w=3.6, h=1.6).anchor("W").label(f"USB audio adapter\nposition {i}\n(C-Media CM108)"))
        d += elm.Line().at(ad.E).right(1.8).label("3.5 mm\nmic + ear", loc="top")
        d += flow.Box(w=3.4, h=1.6).anchor("W").label(f"Headset {i}\n(TRRS, or split\nmic/ear plugs)")
    d += elm.Label().at((1.7, -2.8)).label(
        "A powered USB hub only if the Pi's ports run short; keep adapters apart from the 24 V lamp wiring.",
        halign="left")


def printer(d):
    """The slip printer on the Pi's UART through a MAX3232 level shifter."""
    ic = elm.Ic(pins=[elm.IcPin("T1IN", pin="11", side="left", anchorname="T1IN"),
                      elm.IcPin("R1OUT", pin="12", side="left", anchorname="R1OUT"),
                      elm.IcPin("R2OUT", pin="9", side="left", anchorname="R2OUT"),
                      elm.IcPin("T1OUT", pin="14", side="right", anchorname="T1OUT"),
                      elm.IcPin("R1IN", pin="13", side="right", anchorname="R1IN"),
                      elm.IcPin("R2IN", pin="8", side="right", anchorname="R2IN"),
                      elm.IcPin("VCC", pin="16", side="top", anchorname="VCC", pos=0.5),
                      elm.IcPin("GND", pin="15", side="bottom", anchorname="GND", pos=0.5)],
                size=(5, 3.6), label="MAX3232\n4 x 100 nF\ncharge pump")
    d += ic.at((0, 0))
    for pin, text in (("T1IN", "GPIO14 TXD (pin 8)"), ("R1OUT", "GPIO15 RXD (pin 10)"),
                      ("R2OUT", "free GPIO: printer busy\n(optional)")):
        d += elm.Line().at(getattr(ic, pin)).left(1.5)
        d += elm.Dot(open=True).label(text, loc="left", halign="right")
    for pin, text in (("T1OUT", "DB9 pin 2: printer RXD"), ("R1IN", "DB9 pin 3: printer TXD"),
                      ("R2IN", "DB9 pin 4 or 6: DTR/DSR busy")):
        d += elm.Line().at(getattr(ic, pin)).right(1.5)
        d += elm.Dot(open=True).label(text, loc="right", halign="left")
    d += elm.Line().at(ic.VCC).up(0.5)
    d += elm.Vdd().label("3V3")
    d += elm.Line().at(ic.GND).down(0.5)
    d += elm.Ground().label("GND and DB9 pin 5", loc="right")


def power(d):
    """Two supplies, one star ground."""
    d.config(fontsize=13)
    psu5 = flow.Box(w=3.6, h=1.6).label("5.1 V 3 A\nUSB-C supply").at((0, 3))
    pi = flow.Box(w=3.6, h=1.6).label("Raspberry Pi").at((7, 3))
    logic = flow.Box(w=4.4, h=1.6).label("74HC165 / 74HC595\nchains, pull-ups").at((14, 3))
    psu24 = flow.Box(w=3.6, h=1.6).label("24 V lamp supply\n(bulbs only)").at((0, -1))
    uln = flow.Box(w=3.6, h=1.6).label("ULN2803s\n+ 24 V bulbs").at((7, -1))
    for b in (psu5, pi, logic, psu24, uln):
        d += b
    d += flow.Arrow().at(psu5.E).to(pi.W).label("USB-C", loc="top")
    d += flow.Arrow().at(pi.E).to(logic.W).label("3V3, pin 1", loc="top")
    d += flow.Arrow().at(psu24.E).to(uln.W).label("+24 V, COM", loc="top")
    d += elm.Line().at(logic.S).toy(uln.E[1])
    d += flow.Arrow().tox(uln.E[0]).label("QA..QH", loc="top")
    star = (9, -4)
    d += elm.Dot().at(star)
    d += elm.Ground().at(star)
    d += elm.Label().at((star[0] + 0.6, star[1] - 0.7)).label(
        "star ground point: one joint, at the ULN2803 GND", halign="left")
    for b in (pi, uln, psu24):
        d += elm.Line().at(b.S).toy(star[1])
        d += elm.Line().tox(star[0])
    d += elm.Line().at(logic.E).right(0.8)
    d += elm.Line().toy(star[1])
    d += elm.Line().tox(star[0])
    d += elm.Label().at((0, -6)).label(
        "Never feed 5 V or 24 V into a header pin; the chains run at 3.3 V so their outputs are safe "
        "for the Pi's inputs.", halign="left")


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
    "power": power,
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
