"""The DLE codec: every split of a stream into two reads decodes the same."""

import pytest

from firmware.telephony.modem.dle import END, Decoder, escape

STREAM = (b"\x01\x10\x10\x02" + b"\x10b" + b"\x7f\x10\x1a\x80" + b"\x10/\x105\x10~"
          + b"\x10H\x10d\x10s\x10q\x10l" + b"\x33\x10\x03" + b"\r\nOK\r\n")
AUDIO = b"\x01\x10\x02\x7f\x10\x10\x80\x33"
EVENTS = ["b", "dtmf:5", "H", "d", "s", "q", "l", END]


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_ok__split_at_every_byte_boundary(cut):
    d = Decoder()
    a1, e1 = d.feed(STREAM[:cut])
    a2, e2 = d.feed(STREAM[cut:])
    assert a1 + a2 == AUDIO
    assert e1 + e2 == EVENTS
    assert d.ended and d.rest == b"\r\nOK\r\n"


def test_ok__one_byte_at_a_time():
    d = Decoder()
    audio, events = b"", []
    for b in STREAM:
        a, e = d.feed(bytes([b]))
        audio += a
        events += e
    assert (audio, events, d.rest) == (AUDIO, EVENTS, b"\r\nOK\r\n")


@pytest.mark.parametrize("samples", [b"", b"\x10", b"\x10\x10", b"a\x10b\x10", bytes(range(256))])
def test_ok__escape_doubles_dle_and_decodes_back(samples):
    sent = escape(samples)
    assert sent.count(b"\x10") == 2 * samples.count(b"\x10")
    for cut in range(len(sent) + 1):
        d = Decoder()
        a1, e1 = d.feed(sent[:cut])
        a2, e2 = d.feed(sent[cut:])
        assert a1 + a2 == samples and e1 + e2 == []


def test_fail__a_lone_dle_at_the_end_waits_for_its_code():
    d = Decoder()
    assert d.feed(b"\x05\x10") == (b"\x05", [])
    assert d.feed(b"b\x06") == (b"\x06", ["b"])
