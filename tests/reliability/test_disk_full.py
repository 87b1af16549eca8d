"""Call records on a disk that fills up (issue 10, finding 10).

A real 2 MB filesystem (tmpfs, mounted for the test; needs root, as CI runs)
is filled until a write fails with ENOSPC. Records must then be kept in
memory with the fault lamp lit, never torn or glued together, and written in
order once space comes back.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from firmware.records.calls import JsonLinesRecords
from firmware.records.journal import encode_line
from firmware.records.recordset import read_json_records

from board_support import wait_for


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MB filesystem, mounted as root (or with sudo without a password)."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run([*sudo, "mount", "-t", "tmpfs", "-o",
                        f"size=2m,mode=0700,uid={os.getuid()},gid={os.getgid()}", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a 2 MB tmpfs for the disk-full tests ({r.stderr.strip()}): "
                    "run them as root or with password-less sudo")
    try:
        yield mnt
    finally:
        subprocess.run([*sudo, "umount", "-l", str(mnt)], check=False)


def fill(folder) -> int:
    """Fill the filesystem to the last byte; returns the filler's size."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    chunk = b"\0" * 65536
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
    return filler.stat().st_size


def record(i):
    return {"id": f"w0-{i}", "line": "201", "direction": "in", "kind": "call",
            "caller": "4155550100", "callee": "201", "offered": f"2026-11-30T06:00:{i % 60:02d}.000Z",
            "answered": None, "ended": f"2026-11-30T06:01:{i % 60:02d}.000Z", "rings": 2,
            "position": 1, "hold_s": 0.0, "outcome": "abandoned", "note": "x" * 200}


class Lamp:
    def __init__(self):
        self.history = []

    def __call__(self, message):
        self.history.append(message)

    @property
    def lit(self):
        return bool(self.history) and self.history[-1] is not None


def test_fail__disk_full_keeps_records_lights_the_lamp_and_writes_them_when_space_returns(small_disk):
    JsonLinesRecords.RETRY_S = 0.2
    lamp = Lamp()
    recs = JsonLinesRecords(small_disk / "calls.jsonl", on_fault=lamp)
    for i in range(5):
        recs.write(record(i))
    assert not lamp.history and len(recs.read()) == 5
    fill(small_disk)
    for i in range(5, 29):                     # 24 calls end while the disk is full
        recs.write(record(i))
    # The last page of the file had room for a few; the rest wait in memory.
    assert lamp.lit and ("No space left" in lamp.history[-1] or "disk full" in lamp.history[-1])
    on_disk = (small_disk / "calls.jsonl").read_bytes()
    assert on_disk.endswith(b"\n")                                # whole lines only, none torn
    assert len(recs.pending) >= 16 and len(recs.read()) - 5 + len(recs.pending) == 24
    assert recs.status()["pending"] == len(recs.pending)
    (small_disk / "filler").unlink()           # space comes back
    # The retry thread empties the queue, then clears the lamp: wait for both.
    wait_for(lambda: not recs.pending and lamp.history[-1] is None, 10,
             "the kept records to be written and the fault cleared")
    got = recs.read()
    assert [r["id"] for r in got] == [f"w0-{i}" for i in range(29)]
    # Every line is checksummed and whole; the office's tools read the file too.
    assert [r["id"] for r in read_json_records(small_disk / "calls.jsonl")] == [r["id"] for r in got]
    recs.stop()


def test_fail__a_record_cut_short_is_taken_back_not_glued_to_the_next(small_disk):
    """Writes that run out of space mid-line leave no partial line behind."""
    JsonLinesRecords.RETRY_S = 0.2
    lamp = Lamp()
    recs = JsonLinesRecords(small_disk / "calls.jsonl", on_fault=lamp)
    recs.write(record(0))
    fill(small_disk)
    i = 1
    while not lamp.lit and i < 200:            # what fits in the file's last page, then no more
        recs.write(record(i))
        i += 1
    assert lamp.lit
    data = (small_disk / "calls.jsonl").read_bytes()
    assert data.endswith(b"\n") and len(data) == sum(len(encode_line(record(k)))
                                                      for k in range(i - len(recs.pending)))
    (small_disk / "filler").unlink()
    recs.write(record(i))                      # the next call's end writes them all
    assert not recs.pending and lamp.history[-1] is None
    assert [r["id"] for r in recs.read()] == [f"w0-{k}" for k in range(i + 1)]
    recs.stop()


def test_ok__a_torn_tail_is_cut_at_open_and_damage_in_the_middle_is_skipped(tmp_path):
    path = tmp_path / "calls.jsonl"
    good = [encode_line(record(i)) for i in range(4)]
    damaged = good[1][:20] + b"X" + good[1][21:]
    path.write_bytes(good[0] + damaged + good[2] + good[3][:40])      # torn last line
    reader = JsonLinesRecords(path)
    assert [r["id"] for r in reader.read()] == ["w0-0", "w0-2"]
    assert path.stat().st_size == len(good[0] + damaged + good[2]) + 40   # a reader cuts nothing
    recs = JsonLinesRecords(path)
    recs.write(record(9))
    assert recs.torn_bytes == 40 and recs.bad_lines == [len(good[0])]
    assert [r["id"] for r in recs.read()] == ["w0-0", "w0-2", "w0-9"]
    assert recs.status()["damaged_lines_skipped"] == 1


def test_ok__plain_json_lines_of_older_versions_still_read(tmp_path):
    import json
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps(record(0)) + "\n")
    recs = JsonLinesRecords(path)
    recs.write(record(1))
    assert [r["id"] for r in recs.read()] == ["w0-0", "w0-1"]
    assert [r["id"] for r in read_json_records(path)] == ["w0-0", "w0-1"]


def test_ok__retention_rewrite_keeps_checksums_and_later_writes(tmp_path):
    recs = JsonLinesRecords(tmp_path / "calls.jsonl")
    old = dict(record(0), offered="2026-09-01T00:00:00.000Z")
    recs.write(old)
    recs.write(record(1))
    assert [r["id"] for r in recs.remove_before("2026-10-01")] == ["w0-0"]
    recs.write(record(2))
    assert [r["id"] for r in recs.read()] == ["w0-1", "w0-2"]
    again = JsonLinesRecords(tmp_path / "calls.jsonl")
    again.write(record(3))
    assert again.torn_bytes == 0 and len(again.read()) == 3


@pytest.mark.telephony
def test_fail__calls_ending_on_a_full_disk_light_the_fault_lamp_and_are_recorded_later(
        small_disk, tmp_path):
    """Real calls through the front and a worker; their records go to a full disk."""
    from firmware.config.board import load_board
    from firmware.config.site import load_site
    from firmware.core.state import LineState
    from firmware.telephony.adapter import TelephonyAdapter
    from telephony_support import BoardLoop, have_tools

    have_tools()
    JsonLinesRecords.RETRY_S = 0.3
    desk = load_board("boards/desk.toml")
    records = JsonLinesRecords(small_disk / "calls.jsonl")
    board = BoardLoop(desk, tmp_path / "data")
    adapter = TelephonyAdapter(desk, load_site("boards/desk.site.toml", desk),
                               run_dir=tmp_path / "tel", port=0, workers=1, records=records)
    board.add_adapter(records)
    board.add_adapter(adapter)
    board.start()
    try:
        assert adapter.wait_ready(60), adapter.error
        fill(small_disk)
        lines = ["201", "202", "203", "204"]
        for ln in lines:                       # one at a time: a test caller takes a slot too
            adapter.ring(ln)
            wait_for(lambda ln=ln: board.line(ln) is LineState.RINGING, 10, f"{ln} ringing")
            assert adapter.hang_up_test(ln)
            wait_for(lambda ln=ln: board.line(ln) is LineState.IDLE, 10, f"{ln} idle")
        wait_for(lambda: "call records" in board.faults(), 10, "the fault lamp for call records")
        assert records.pending and (small_disk / "calls.jsonl").read_bytes()[-1:] in (b"", b"\n")
        (small_disk / "filler").unlink()
        wait_for(lambda: not records.pending, 10, "the kept records written")
        wait_for(lambda: "call records" not in board.faults(), 10, "the fault lamp cleared")
        got = [(r["line"], r["outcome"]) for r in records.read()]
        assert sorted(got) == [(ln, "abandoned") for ln in lines]
    finally:
        board.stop()
