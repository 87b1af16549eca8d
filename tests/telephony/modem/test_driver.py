"""The V.253 driver against the simulated modem on a real pseudo-terminal pair."""

import threading
import time

import pytest
import serial

from telephony_support import wait_for

from firmware.telephony import protocol as msg
from firmware.telephony.modem import codec
from firmware.telephony.modem.driver import Driver, ModemError, ModemGone, parse_vsm, choose_format, PROFILES
from firmware.telephony.modem.line import HangupDetector, ModemLine
from firmware.telephony.modem.sim import BUSY, DIAL_TONE, SimModem, line_noise, tone_source


@pytest.fixture
def modem(request):
    made = []

    def make(profile="conexant", **kw):
        sim = SimModem(profile, **kw)
        port = serial.Serial(sim.path, 115200, timeout=0.05)
        drv = Driver(port)
        made.append((sim, port))
        return sim, drv
    yield make
    for sim, port in made:
        port.close()
        sim.stop()


class LineEvents:
    """What a ``ModemLine`` emits, each read as the gateway message it becomes (so the line
    and the protocol must agree: an event the protocol does not have fails the test)."""

    def __init__(self):
        self.events: list = []
        self.got = threading.Condition()

    def emit(self, ev, **kw):            # on the line's thread: keep an error for wait()
        try:
            m = msg.from_dict(msg.GATEWAY_EVENTS, {"event": ev, **kw})
        except msg.ProtocolError as e:
            m = e
        with self.got:
            self.events.append(m)
            self.got.notify_all()

    def wait(self, kind, n=1, timeout=10) -> list:
        """The first ``n`` events of type ``kind``, waiting up to ``timeout`` s for them."""
        with self.got:
            self.got.wait_for(lambda: sum(isinstance(e, (kind, msg.ProtocolError))
                                          for e in self.events) >= n, timeout)
            assert not any(isinstance(e, msg.ProtocolError) for e in self.events), self.events
            assert sum(isinstance(e, kind) for e in self.events) >= n, self.events
            return [e for e in self.events if isinstance(e, kind)][:n]


def idle_events(drv, seconds):
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out += drv.poll_idle(0.05)
    return out


def idle_events_until(drv, done, timeout=10.0):
    """The idle events, polled until ``done(events)`` (bounded: ``timeout`` s)."""
    out = []
    end = time.monotonic() + timeout
    while not done(out):
        assert time.monotonic() < end, f"gave up waiting; saw {out}"
        out += drv.poll_idle(0.05)
    return out


def stream(drv, seconds, write=True):
    pcm, events = b"", []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        p, e = drv.read_stream(512, 0.02)
        pcm += p
        events += e
        if write and p:
            drv.write_stream(p)
    return pcm, events


@pytest.mark.parametrize("profile,stuck", [("conexant", False), ("conexant", True), ("usr", False),
                                           ("usr", True), ("multitech", False), ("dell", False)])
def test_ok__start_up_leaves_voice_resets_and_identifies(modem, profile, stuck):
    sim, drv = modem(profile, stuck=stuck)
    ident = drv.start()
    assert ident["profile"] == profile and drv.profile is PROFILES[profile]
    cmds = [c.upper() for c in sim.commands]
    assert cmds[:3] == ["ATZ", "ATE0", "ATV1"]
    assert "ATI0" in cmds and "AT+GMI" in cmds and "ATM0" in cmds
    assert sim.cid_on and not sim.streaming and sim.echo is False
    if profile in ("conexant", "dell"):
        assert "AT-SCID=1;+VCID=1;-STE=3" in sim.commands
    assert ("AT!4886=00" in sim.commands) == (profile == "dell")


def test_ok__country_is_set_with_gci(modem):
    sim, drv = modem("conexant")
    drv.country = "GB"
    drv.start()
    assert "AT+GCI=B4" in sim.commands


@pytest.mark.parametrize("order,spaces,name", [
    (["DATE", "TIME", "NMBR", "NAME"], True, "JOHN DOE"),
    (["NAME", "NMBR", "TIME", "DATE"], False, "JOHN DOE"),
    (["NMBR", "DATE", "TIME"], True, None),                 # NAME missing
])
def test_ok__rings_are_counted_and_caller_id_is_read_in_any_order(modem, order, spaces, name):
    sim, drv = modem("conexant")
    drv.start()
    sim.ring("5551234", name, period=0.4, rings=3, order=order, spaces=spaces)
    evs = idle_events(drv, 1.6)
    rings = [e[1] for e in evs if e[0] == "ring"]
    cids = [e[1] for e in evs if e[0] == "cid"]
    assert rings == [1, 2, 3]
    assert len(cids) == 1 and cids[0].number == "5551234" and cids[0].name == name
    assert cids[0].date == "1130" and cids[0].time == "0915"
    # it came between the first and the second ring
    kinds = [e[0] for e in evs]
    assert kinds.index("cid") == 1


def test_ok__caller_id_never_sent_is_not_an_error(modem):
    sim, drv = modem("usr")
    drv.start()
    sim.ring(cid=False, period=0.4, rings=2)
    evs = idle_events(drv, 1.0)
    assert [e for e in evs if e[0] == "cid"] == [] and [e[1] for e in evs] == [1, 2]


def test_ok__withheld_number_says_private(modem):
    sim, drv = modem("conexant")
    drv.start()
    sim.ring("P", period=0.4, rings=2)
    cid = next(e[1] for e in idle_events(drv, 1.0) if e[0] == "cid")
    assert cid.number is None and cid.absent == "private"


@pytest.mark.parametrize("profile,fmt,code", [("conexant", "ulaw", 131), ("usr", "u8", 128),
                                              ("multitech", "ulaw", 131)])
def test_ok__answer_picks_the_format_and_carries_audio_both_ways(modem, profile, fmt, code):
    sim, drv = modem(profile)
    drv.start()
    sim.ring("5551234", period=0.3, rings=4, source=tone_source(1000))
    idle_events(drv, 0.5)
    assert drv.answer() == fmt
    cmds = sim.commands
    for c in ["AT+FCLASS=8", "AT+VSM=?", f"AT+VSM={code},8000", "AT+VIT=0", "AT+VLS=1", "AT+VTR"]:
        assert c in cmds, (c, cmds)
    assert "AT+VTR=?" not in cmds              # never probed: the CX93001 says ERROR to it
    assert cmds.index("AT+VLS=1") < cmds.index("AT+VTR")
    t0 = time.monotonic()
    pcm, events = stream(drv, 1.5)
    took = time.monotonic() - t0
    got = len(pcm) // 2
    assert 0.8 * 8000 * took < got < 1.2 * 8000 * took + 800    # paced at 8000 samples/s
    assert codec.rms(pcm) > 3000                                # the far end's tone
    assert "H" not in events                                    # USR's DLE H is ignored
    assert codec.rms(sim.heard_pcm()) > 3000                    # what we sent reached the line
    drv.release()
    tail = [c.upper() for c in sim.commands[-4:]]
    assert tail[:3] == ["AT+VLS=0", "ATH", "AT+FCLASS=0"] and "VCID=1" in tail[3]
    assert not sim.streaming and not sim.off_hook and sim.fclass == 0


@pytest.mark.parametrize("how,event", [("busy", "b"), ("loop", "l")])
def test_ok__far_end_hang_up_codes(modem, how, event):
    sim, drv = modem("conexant")
    drv.start()
    sim.ring(period=0.3, rings=3)
    idle_events(drv, 0.4)
    drv.answer()
    stream(drv, 0.3)
    sim.hang_up(how)
    _, events = stream(drv, 1.5)
    assert event in events


def test_ok__dtmf_from_the_line_is_reported(modem):
    sim, drv = modem("usr")
    drv.start()
    sim.ring(period=0.3, rings=3)
    idle_events(drv, 0.4)
    drv.answer()
    stream(drv, 0.2)
    for ch in "/5~":
        sim._event(ch)
    _, events = stream(drv, 0.5)
    assert events.count("dtmf:5") == 1


def test_ok__multitech_sends_no_hang_up_code_so_the_audio_decides(modem):
    sim, drv = modem("multitech")
    drv.start()
    sim.ring(period=0.3, rings=3)
    idle_events(drv, 0.4)
    drv.answer()
    stream(drv, 0.2)
    sim.hang_up("busy")
    pcm, events = stream(drv, 2.0)
    assert events == []
    det = HangupDetector(silence_s=30, tone_s=1.5)
    assert det.feed(pcm) == "call-progress tone"


def test_ok__detector_hears_silence_and_not_a_talker():
    det = HangupDetector(silence_s=1.0, tone_s=1.0)
    voice = tone_source(1000)(0, 8000)
    pcm = b"".join(int(v).to_bytes(2, "little", signed=True) for v in voice)
    assert det.feed(pcm) is None
    quiet = b"".join(int(v).to_bytes(2, "little", signed=True) for v in line_noise()(0, 8800))
    assert det.feed(quiet) == "silence"
    det.reset()
    dial = b"".join(int(v).to_bytes(2, "little", signed=True) for v in DIAL_TONE(0, 8800))
    assert det.feed(dial) == "call-progress tone"


@pytest.mark.parametrize("offset", [0, 5, 10, 80, 150, 155])
def test_ok__busy_tone_is_heard_wherever_its_edges_fall_in_the_blocks(offset):
    """A block holding a sliver of the tone's burst reads as voice: one such block at each
    on/off edge must not restart the count (at some alignments busy was never heard)."""
    det = HangupDetector(silence_s=30, tone_s=4.0)
    busy = b"".join(int(v).to_bytes(2, "little", signed=True) for v in BUSY(offset, 8000 * 6))
    heard = next((i / 16000 for i in range(0, len(busy), 640) if det.feed(busy[i:i + 640])), None)
    assert heard is not None and heard < 4.5, heard
    talker = b"".join(int(v).to_bytes(2, "little", signed=True) for v in tone_source(1000)(0, 800))
    det.reset()
    det.feed(busy[:8000 * 3 * 2])
    det.feed(talker)                                 # 100 ms of a person: the count restarts
    assert det.since_voice == 0


def test_ok__off_hook_hears_dial_tone(modem):
    sim, drv = modem("conexant")
    drv.start()
    drv.off_hook()
    pcm, events = stream(drv, 1.0, write=False)
    assert "d" in events and codec.rms(pcm) > 2000
    drv.release()


DIAL_CASES = [(p, r) for p in ("conexant", "usr") for r in ("VCON", "BUSY", "NO DIALTONE",
                                                              "NO ANSWER")]


@pytest.mark.parametrize("profile,result", DIAL_CASES + [("dell", "VCON"), ("multitech", "VCON")])
def test_ok__dialling_out_the_profiles_way(modem, profile, result):
    command = "ATDT5550100;" if profile in ("conexant", "dell") else "ATDT5550100"
    sim, drv = modem(profile)
    drv.start()
    sim.dial_result = result
    sim.answer_source = tone_source(1000)
    if result == "VCON":
        assert drv.dial("5550100") in ("ulaw", "u8")
        pcm, _ = stream(drv, 0.5)
        assert codec.rms(pcm) > 3000
        drv.release()
    else:
        with pytest.raises(ModemError, match=result):
            drv.dial("5550100")
    assert sim.dialled == ["5550100"] and command in sim.commands
    at = [c.upper() for c in sim.commands]
    if command.endswith(";"):          # dialled in data mode, then the voice set-up
        assert "AT+FCLASS=8" not in at[:at.index(command)]
        if result == "VCON":
            assert at.index(command) < at.index("AT+FCLASS=8") < at.index("AT+VLS=1") \
                < at.index("AT+VTR")
    else:                              # dialled in voice mode
        assert at.index("AT+FCLASS=8") < at.index(command)
    assert not sim.off_hook


@pytest.mark.parametrize("profile", ["conexant", "usr"])
def test_ok__dtmf_goes_down_the_line_with_vts_and_the_call_goes_on(modem, profile):
    sim, drv = modem(profile)
    drv.start()
    sim.answer_source = tone_source(1000)
    drv.dial("5550100")
    stream(drv, 0.3)
    drv.send_dtmf("1")
    drv.send_dtmf("#")
    assert sim.vts == ["1", "#"] and "AT+VTS=1" in sim.commands
    assert sim.streaming and sim.off_hook              # back in full duplex
    pcm, _ = stream(drv, 0.5)
    assert codec.rms(pcm) > 3000                       # the call's audio carries on
    drv.release()
    assert not sim.off_hook


def test_ok__dell_gets_caller_id_only_with_its_own_switch(modem):
    sim, drv = modem("dell")
    ident = drv.start()
    assert ident["profile"] == "dell" and "RD02" in ident["gmm"]
    assert "AT!4886=00" in sim.commands
    sim.ring("5551234", "JOHN DOE", period=0.4, rings=2)
    evs = idle_events_until(drv, lambda evs: any(e[0] == "cid" for e in evs))
    assert [e[1].number for e in evs if e[0] == "cid"] == ["5551234"]
    sim.plug()                                         # powered up afresh: off again
    sim.cid_on = True                                  # +VCID=1 alone is not enough
    sim.ring("5551234", period=0.3, rings=2)
    # the block would be written before the second RING (0.4 of a period after the first)
    wait_for(lambda: sim.rings_sent == 2, 10, "two rings")
    assert sim.cid_blocks_sent == 0


def test_fail__dell_taken_for_a_plain_conexant_never_gets_caller_id(modem):
    sim, drv = modem("dell")
    drv.want_profile = "conexant"                      # what the site file forced
    drv.start()
    assert "AT!4886=00" not in sim.commands
    sim.ring("5551234", period=0.3, rings=2)
    evs = idle_events_until(drv, lambda evs: sum(e[0] == "ring" for e in evs) >= 2)
    assert [e[1] for e in evs if e[0] == "ring"] == [1, 2] and not any(e[0] == "cid" for e in evs)
    assert sim.cid_blocks_sent == 0


@pytest.mark.parametrize("how", ["later", "none"])
def test_ok__offered_at_the_first_ring_and_the_number_follows(tmp_path, how):
    sim = SimModem("conexant", link=tmp_path / "usb-Conexant-if00")
    events = LineEvents()
    line = ModemLine(str(sim.path), events.emit, ring_gone_s=1.5)
    line.start()
    try:
        events.wait(msg.ModemReady)
        sim.ring("5551234", "JOHN DOE", period=5.0, rings=1 if how == "none" else 3,
                 cid="later" if how == "later" else False)
        offer = events.wait(msg.LineOffer)[0]
        assert offer.rings == 1 and sim.rings_sent == 1          # the first RING, no number yet
        assert not offer.number
        if how == "later":
            sim.send_caller_id()                                   # between ring 1 and ring 2
            cid = events.wait(msg.LineCallerId)[0]
            assert (cid.number, cid.name) == ("5551234", "JOHN DOE")
            assert cid.sip_call_id is None                         # the gateway adds it
        else:
            events.wait(msg.LineRingStopped, timeout=15)           # it rang out, no number
        assert sum(isinstance(e, msg.LineOffer) for e in events.events) == 1
        assert any(isinstance(e, msg.LineCallerId) for e in events.events) == (how == "later")
    finally:
        line.stop()
        sim.stop()


def test_fail__bad_number_is_refused_before_dialling(modem):
    sim, drv = modem("conexant")
    drv.start()
    with pytest.raises(ModemError, match="cannot dial"):
        drv.dial("555;ATZ")
    assert sim.dialled == []


def test_fail__unplugged_mid_call(modem):
    sim, drv = modem("conexant")
    drv.start()
    sim.ring(period=0.3, rings=3)
    idle_events(drv, 0.4)
    drv.answer()
    stream(drv, 0.2)
    sim.unplug()
    with pytest.raises(ModemGone):
        stream(drv, 1.0)


def test_fail__a_modem_that_does_not_answer(modem):
    sim, drv = modem("conexant")
    sim._at = lambda body: None            # deaf: takes commands, answers nothing
    with pytest.raises(ModemError, match="no answer"):
        drv.start()


def test_ok__vsm_parsing_prefers_ulaw_and_avoids_16_bit():
    offered = parse_vsm(['0,"SIGNED PCM",8,0,(7200,8000,11025),(0),(0)',
                         '129,"16-BIT LINEAR",16,0,(8000),(0),(0)',
                         '131,"8-BIT ULAW",8,0,(8000),(0),(0)'])
    assert choose_format(offered, PROFILES["conexant"]) == ("ulaw", 131)
    assert choose_format(parse_vsm(['129,"16-BIT LINEAR",16,0,(8000),(0),(0)',
                                    '128,"8-BIT LINEAR",8,0,(8000),(0),(0)']),
                         PROFILES["usr"]) == ("u8", 128)
    assert choose_format([], PROFILES["usr"]) == ("u8", 128)


def test_ok__the_line_reopens_an_unplugged_modem_with_back_off(tmp_path):
    link = tmp_path / "usb-Conexant-if00"
    sim = SimModem("conexant", link=link)
    events = LineEvents()
    line = ModemLine(str(link), events.emit, retry_min_s=0.2, retry_max_s=0.8)
    line.start()
    try:
        events.wait(msg.ModemReady)
        sim.unplug()
        faults = events.wait(msg.ModemFault, 2)
        assert "unplugged" in faults[0].message and str(link) in faults[0].message
        assert faults[1].retry_in_s > faults[0].retry_in_s      # backing off
        sim.plug()
        events.wait(msg.ModemReady, 2)
    finally:
        line.stop()
        sim.stop()


def test_fail__a_modem_that_stops_answering_is_a_fault_naming_it(tmp_path):
    link = tmp_path / "usb-USR-if00"
    sim = SimModem("usr", link=link)
    deaf = sim._at
    sim._at = lambda body: None
    events = LineEvents()
    line = ModemLine(str(link), events.emit, retry_min_s=0.2, retry_max_s=0.4)
    line.start()
    try:
        fault = events.wait(msg.ModemFault, timeout=20)[0]
        assert "is not answering" in fault.message and str(link) in fault.message
        assert "ATZ" in fault.message and not fault.in_call
        sim._at = deaf                       # it answers again: ready
        events.wait(msg.ModemReady, timeout=20)
    finally:
        line.stop()
        sim.stop()


def test_ok__16_bit_samples_split_across_reads_are_joined(modem):
    sim, drv = modem("conexant")
    drv.fmt = "s16"
    pcm = b"".join(v.to_bytes(2, "little", signed=True) for v in (1000, -2000, 0x1010, 3000))
    wire = pcm.replace(b"\x10", b"\x10\x10")

    class Reads:
        def __init__(self, chunks):
            self.chunks = list(chunks)
            self.timeout = 0

        def read(self, n):
            return self.chunks.pop(0) if self.chunks else b""
    for cut in range(1, len(wire)):
        drv.port = Reads([wire[:cut], wire[cut:]])
        drv.decoder.reset()
        drv._odd = b""
        got = drv.read_stream(512, 0)[0] + drv.read_stream(512, 0)[0]
        assert got == pcm, cut
