"""The operator's console behind the view: the message pad's durable drafts, the
stamp key taking them, the rack with ages, check-in and read-back, the dead box
and the card's history, driven through the real BoardState and time clock."""

import datetime as dt
import json

import pytest

from firmware.core.state import LineCleared, LineRinging
from firmware.errors import ControlError
from firmware.timeclock.adapter import TimeClockAdapter
from firmware.timeclock.customers import Customers
from firmware.timeclock.drafts import MAX_DRAFTS, Drafts, compose

from test_customers import MARY
from test_timeclock_adapter import TZ, MiniDaemon, settle

HOLD_MARY = {**MARY, "delivery": {"method": "hold", "to": None}}


class Clock:
    def __init__(self):
        self.now = dt.datetime(2026, 11, 24, 10, 0, tzinfo=TZ)

    def __call__(self):
        return self.now


@pytest.fixture
def rig(tmp_path):
    cs = Customers(tmp_path)
    cs.add(HOLD_MARY)
    cs.add({**HOLD_MARY, "id": "acme", "name": "Acme Plumbing", "line": "202",
            "kind": "plumber", "collect": ["name", "number"], "instructions": []})
    cs.close()
    clock = Clock()
    d = MiniDaemon()
    a = TimeClockAdapter(tmp_path, clock=clock, operators={1: "Becky"})
    d.add_adapter(a)
    d.pump()
    yield d, a, tmp_path, clock
    a.stop()


def answer(d, a, line, caller="5550123", call="call-1"):
    d.feed(LineRinging(line, caller=caller, call=call))
    d.press(f"line-{line}")
    settle(a)


def test_ok__pad_fields_stamped_by_the_stamp_key(rig):
    d, a, tmp, clock = rig
    answer(d, a, "201")
    d.call("draft", position=1, fields={"name": "Mrs Lee", "number": "5550123",
                                        "glove size": "7", "message": "are they ready?"},
           urgent=True)
    # On disk before the answer came back.
    [on_disk] = json.loads((tmp / "drafts.json").read_text())["1"]
    assert on_disk["fields"]["name"] == "Mrs Lee" and on_disk["line"] == "201"
    d.press("p1-stamp")
    settle(a)
    [m] = a.rack.waiting()
    assert m["text"] == "Name: Mrs Lee; Number: 5550123; Glove size: 7; Message: are they ready?"
    assert m["fields"]["glove size"] == "7" and m["urgent"] is True
    assert m["line"] == "201" and m["customer"] == "marys-gloves" and m["call"] == "call-1"
    assert a.status()["pads"] == {}
    assert not (json.loads((tmp / "drafts.json").read_text()))
    assert d.pump(lambda: d.lamp("msg-201") == "steady")


def test_ok__draft_survives_a_restart_and_the_line_released_first(rig, tmp_path):
    d, a, tmp, clock = rig
    answer(d, a, "202", call="call-9")
    d.call("draft", position=1, fields={"name": "Joe", "message": "leak under the sink"})
    d.press("p1-release")                               # the caller is gone first
    settle(a)
    a.stop()
    # The daemon restarts: the draft is still with position 1.
    d2 = MiniDaemon()
    a2 = TimeClockAdapter(tmp, clock=clock, operators={1: "Becky"})
    d2.add_adapter(a2)
    try:
        pad = a2.status()["pads"]["1"]
        assert pad["fields"] == {"name": "Joe", "message": "leak under the sink"}
        assert pad["line"] == "202" and pad["customer"] == "acme"
        d2.press("p1-stamp")                            # no line picked up now
        settle(a2)
        [m] = a2.rack.waiting()
        assert m["line"] == "202" and m["customer"] == "acme" and m["call"] == "call-9"
        assert m["text"] == "Name: Joe; Message: leak under the sink"
        assert a2.status()["pads"] == {}
    finally:
        a2.stop()
        a.stop = lambda: None       # already stopped


def test_ok__each_call_keeps_its_own_draft_filed_under_its_own_customer(rig):
    """Picking up another line puts that call's own (empty) draft on the pad; the one
    typed on the first call stays whole, listed unfinished, and once reopened is stamped
    under its own customer and call, with every field it was typed with."""
    d, a, tmp, clock = rig
    answer(d, a, "201", call="call-1")
    mary = a.status()["on_pad"]["1"]
    assert mary == {"id": "201/call-1", "line": "201", "call": "call-1"}
    typed = {"name": "Mrs Lee", "number": "5550123", "glove size": "7", "message": "are they"}
    d.call("draft", position=1, id=mary["id"], fields=typed)
    answer(d, a, "202", caller="5550999", call="call-2")     # Mary's call goes on hold
    st = a.status()
    assert st["on_pad"]["1"]["id"] == "202/call-2" and "1" not in st["pads"]
    [left] = st["unfinished"]["1"]
    assert left["id"] == "201/call-1" and left["name"] == "Mary's Gloves"
    assert left["fields"] == typed and left["text"].startswith("Name: Mrs Lee;")
    # Mary's last keystrokes arrive after the pick-up: still hers; the pad stays on Acme's call.
    d.call("draft", position=1, id=mary["id"], fields={**typed, "message": "are they ready?"})
    assert a.status()["on_pad"]["1"]["id"] == "202/call-2"
    d.call("draft", position=1, id="202/call-2",
           fields={"name": "Joe", "number": "5550999", "message": "leak"})
    d.press("p1-stamp")
    settle(a)
    [acme] = a.rack.waiting(customer="acme")
    assert acme["text"] == "Name: Joe; Number: 5550999; Message: leak"
    assert (acme["line"], acme["call"]) == ("202", "call-2")
    assert a.rack.waiting(customer="marys-gloves") == []
    # Reopened on the pad (the position still on Acme's call) and stamped as Mary's.
    with pytest.raises(ControlError, match="no unfinished draft 203/"):
        d.call("draft-open", position=1, id="203/")
    d.call("draft-open", position=1, id=mary["id"])
    assert a.status()["pads"]["1"]["fields"]["message"] == "are they ready?"
    d.press("p1-stamp")
    settle(a)
    [m] = a.rack.waiting(customer="marys-gloves")
    assert m["text"] == "Name: Mrs Lee; Number: 5550123; Glove size: 7; Message: are they ready?"
    assert (m["line"], m["call"], m["fields"]["glove size"]) == ("201", "call-1", "7")
    st = a.status()
    assert st["unfinished"] == {} and st["pads"] == {} and st["on_pad"]["1"]["id"] == "202/call-2"
    # Back on Mary's held call: her call's pad again.
    d.press("line-201")
    settle(a)
    assert a.status()["on_pad"]["1"]["id"] == "201/call-1"


def test_ok__unfinished_drafts_survive_a_restart(rig):
    d, a, tmp, clock = rig
    answer(d, a, "201", call="call-1")
    d.call("type-message", position=1, text="for Mary")
    answer(d, a, "202", call="call-2")
    d.call("type-message", position=1, text="for Acme")
    d.press("p1-release")
    settle(a)
    a.stop()
    a2 = TimeClockAdapter(tmp, clock=clock)
    d2 = MiniDaemon()
    d2.add_adapter(a2)
    try:
        st = a2.status()       # idle: the last one typed is on the pad, the other listed
        assert st["pads"]["1"]["fields"] == {"message": "for Acme"}
        assert [u["id"] for u in st["unfinished"]["1"]] == ["201/call-1"]
        d2.press("p1-stamp")
        settle(a2)
        assert [m["customer"] for m in a2.rack.waiting()] == ["acme"]
    finally:
        a2.stop()
        a.stop = lambda: None


def test_ok__drafts_kept_one_per_position_before_are_read(tmp_path):
    (tmp_path / "drafts.json").write_text(json.dumps(
        {"1": {"line": "201", "customer": "marys-gloves", "call": "c-1",
               "fields": {"message": "hi"}, "urgent": False, "updated": "2026-11-24T10:00:00"}}))
    assert Drafts(tmp_path).get(1, ("201", "c-1"))["fields"] == {"message": "hi"}


def test_fail__too_many_unfinished_drafts_at_a_position(rig):
    d, a, tmp, clock = rig
    for i in range(MAX_DRAFTS):
        d.call("draft", position=1, id=f"201/c-{i}", fields={"message": str(i)})
    with pytest.raises(ControlError, match="already holds 20 unfinished messages"):
        d.call("draft", position=1, id="201/c-new", fields={"message": "one more"})
    d.call("draft", position=1, id="201/c-3", fields={"message": "changed"})   # still kept


def test_ok__pad_stamp_button_and_plain_stamp(rig):
    d, a, tmp, clock = rig
    answer(d, a, "201")
    with pytest.raises(ControlError, match="message pad is empty"):
        d.call("pad-stamp", position=1)
    d.call("draft", position=1, fields={"message": "call back"})
    r = d.call("pad-stamp", position=1)
    assert r["stamp"]["what"] == "message" and r["stamp"]["text"] == "call back"
    d.press("p1-stamp")                                 # nothing typed: a plain stamp
    settle(a)
    assert a.tc.stamps()[-1]["what"] == "stamp"


@pytest.mark.parametrize("args, expected", [
    ({"fields": "hello"}, "expected an object of field name to text"),
    ({"fields": {"name": 5}}, r"fields.name = 5: expected text"),
    ({"fields": {"": "x"}}, "expected a short name"),
    ({"fields": {"message": "x" * 5000}}, "expected at most 4000"),
    ({"urgent": "yes"}, "urgent = 'yes': expected true or false"),
    ({"colour": "red"}, "unknown colour"),
    ({"id": "201"}, "expected a draft's id"),
    ({"id": "201/", "line": "201"}, "line or id, not both"),
])
def test_fail__bad_drafts_get_a_clear_error(rig, args, expected):
    d, a, tmp, clock = rig
    with pytest.raises(ControlError, match=expected):
        d.call("draft", position=1, **args)


def test_ok__compose_follows_the_card():
    assert compose({"message": " ring back "}) == "ring back"
    assert compose({"number": "1", "message": "m", "name": "n"}, ["name", "number"]) == \
        "Name: n; Number: 1; Message: m"
    assert compose({"name": " ", "message": ""}) == ""


def test_ok__rack_check_in_read_back_dead_box_history(rig):
    d, a, tmp, clock = rig
    (tmp / "calls.jsonl").write_text(json.dumps(
        {"id": "call-1", "line": "201", "direction": "in", "kind": "call", "caller": "5550123",
         "callee": "201", "offered": "2026-11-24T15:00:00.000Z", "answered": None,
         "ended": None, "rings": 2, "position": 1, "hold_s": 0, "outcome": "answered"}) + "\n")
    answer(d, a, "201")
    for text in ("first", "second"):
        d.call("draft", position=1, fields={"message": text, "number": "5550123"})
        d.call("pad-stamp", position=1)
        clock.now += dt.timedelta(minutes=5)
    d.call("take-message", line="202", text="for acme")
    clock.now += dt.timedelta(minutes=5)
    rack = d.call("rack")
    assert [b["customer"] for b in rack["rack"]] == ["marys-gloves", "acme"]
    mary = rack["rack"][0]
    assert [m["fields"]["message"] for m in mary["messages"]] == ["first", "second"]
    assert [m["age_s"] for m in mary["messages"]] == [900, 600]
    assert mary["messages"][0]["sent"]["status"] == "held"
    # Check-in on screen: the same commands as switchboard-diag check-in / read-back.
    ci = d.call("check-in", customer="marys-gloves")
    for m in ci["waiting"]:
        d.call("read-back", slip=m["slip"], position=1)
    assert d.pump(lambda: d.lamp("msg-201") == "dark")
    assert [b["customer"] for b in d.call("rack")["rack"]] == ["acme"]
    # The dead box, by text, by slip number (message or read-back), customer and date.
    found = d.call("deadbox", search="SECOND")["slips"]
    assert len(found) == 1 and found[0]["read_back"]["what"] == "read-back"
    assert found[0]["call_record"]["id"] == "call-1" and found[0]["name"] == "Mary's Gloves"
    first = mary["messages"][0]["slip"]
    assert [s["slip"] for s in d.call("deadbox", slip=str(first))["slips"]] == [first]
    rb = found[0]["read_back"]["slip"]
    assert [s["slip"] for s in d.call("deadbox", slip=rb)["slips"]] == [found[0]["slip"]]
    assert len(d.call("deadbox", customer="acme")["slips"]) == 1
    assert d.call("deadbox", since="2026-11-25")["slips"] == []
    with pytest.raises(ControlError, match="slip = 'x': expected a slip number"):
        d.call("deadbox", slip="x")
    with pytest.raises(ControlError, match="since '24/11': expected a date as YYYY-MM-DD"):
        d.call("deadbox", since="24/11")
    # The card's history: this caller's calls, the customer's calls and messages.
    h = d.call("history", customer="marys-gloves", caller="555-0123")
    assert [c["id"] for c in h["caller_calls"]] == ["call-1"]
    assert [c["id"] for c in h["customer_calls"]] == ["call-1"]
    assert [m["fields"]["message"] for m in h["messages"]] == ["second", "first"]
    assert len(h["caller_messages"]) == 2
    with pytest.raises(ControlError, match="expected customer or caller"):
        d.call("history")


def _callout_rig(tmp_path, clock=None):
    """A time clock and a scheduler wired as app.adapters wires them (the scheduler calls
    urgent messages out), on MiniDaemon; ``now`` is the scheduler's clock, to move on."""
    from firmware.schedule.scheduler import ScheduleAdapter

    now = [dt.datetime(2026, 11, 24, 15, 0, 20, tzinfo=dt.timezone.utc)]
    d = MiniDaemon()
    a = TimeClockAdapter(tmp_path, clock=clock or Clock())
    sched = ScheduleAdapter(tmp_path / "schedule.json", dt.timezone.utc, clock=lambda: now[0])
    sched.data_dir = tmp_path           # what MiniDaemon hands its Context
    a.call_out, a.call_out_state = sched.call_out, sched.call_out_state
    d.add_adapter(a)
    d.add_adapter(sched)
    return d, a, sched, now


def test_ok__urgent_message_called_out_to_the_on_call_contact(tmp_path):
    """The scheduled calls' machinery places it at the next minute and the outcome
    shows on the slip in the rack and the dead box; not urgent, or no on-call: no call."""
    from firmware.core.state import PlacedCallOutcome, ScheduledCallDue

    cs = Customers(tmp_path)
    cs.add({**HOLD_MARY, "on_call": [{"label": "Joe", "number": "555-0142"}]})
    cs.add({**HOLD_MARY, "id": "acme", "name": "Acme Plumbing", "line": "202", "kind": "plumber",
            "instructions": []})
    cs.close()
    clock = Clock()
    d, a, sched, now = _callout_rig(tmp_path, clock)
    try:
        d.call("draft", position=1, line="201", fields={"message": "burst pipe at the shop"},
               urgent=True)
        slip = d.call("pad-stamp", position=1)["stamp"]["slip"]
        d.call("draft", position=1, line="201", fields={"message": "not urgent"})
        d.call("pad-stamp", position=1)
        d.call("draft", position=1, line="202", fields={"message": "no on-call"}, urgent=True)
        d.call("pad-stamp", position=1)
        settle(a)
        msg = d.call("rack")["rack"][0]["messages"][0]
        assert msg["callout"] == {"state": "scheduled", "number": "5550142",
                                  "due": "2026-11-24 15:01"}
        assert d.call("rack")["rack"][0]["messages"][1]["callout"] is None
        assert d.call("rack")["rack"][1]["messages"][0]["callout"] is None
        now[0] += dt.timedelta(seconds=45)
        sched.poll()
        [due] = [e for e in d.events.queue if isinstance(e, ScheduledCallDue)]
        assert due.number == "5550142" and due.mode == "auto"
        assert "urgent message for Mary's Gloves" in due.message and "burst pipe" in due.message
        assert d.call("deadbox", slip=slip)["slips"][0]["callout"]["state"] == "calling"
        sched.handle(PlacedCallOutcome(due.occurrence, "w0-7", "answered"))
        co = d.call("deadbox", slip=slip)["slips"][0]["callout"]
        assert co["state"] == "answered" and co["calls"] == ["w0-7"] and co["attempts"] == 1
    finally:
        sched.stop()
        a.stop()


def test_ok__history_shows_this_callers_messages_from_the_kept_slips(rig):
    """Taken on one of the caller's calls or with their number in a number field, from
    every kept slip (not only the customer's latest), newest first, five at most."""
    d, a, tmp, clock = rig
    (tmp / "calls.jsonl").write_text(json.dumps(
        {"id": "call-1", "line": "201", "caller": "5550123", "offered": "2026-11-24T15:00:00Z",
         "outcome": "answered"}) + "\n")

    def stamp(message, **fields):
        d.call("draft", position=1, line="201", fields={**fields, "message": message})
        d.call("pad-stamp", position=1)
    for i in range(5):
        stamp(f"mine {i}", phone="+1 555-0123")
    answer(d, a, "201", call="call-1")
    d.call("type-message", position=1, text="on the call")       # no number typed
    d.call("pad-stamp", position=1)
    d.feed(LineCleared("201", "caller hung up"))
    d.press("p1-release")
    for i in range(6):
        stamp(f"other {i}", number="5559999")
    settle(a)
    assert d.pump(lambda: a.index.ready)
    for ready in (True, False):         # the dead box's index; the journals until it is ready
        a.index.ready = ready
        h = d.call("history", customer="marys-gloves", caller="555 0123")
        assert [m["text"].split("Message: ")[-1] for m in h["caller_messages"]] == \
            ["on the call", "mine 4", "mine 3", "mine 2", "mine 1"]
        assert [m["fields"]["message"] for m in h["messages"]] == \
            ["other 5", "other 4", "other 3", "other 2", "other 1"]
        h = d.call("history", caller="5559999")
        assert len(h["caller_messages"]) == 5 and h["messages"] == []


def test_ok__customers_for_the_dead_box_picker(rig):
    d, a, tmp, clock = rig
    assert d.call("customers") == {"customers": [
        {"id": "acme", "name": "Acme Plumbing", "line": "202"},
        {"id": "marys-gloves", "name": "Mary's Gloves", "line": "201"}]}


def test_ok__urgent_call_out_tries_the_on_call_list_in_turn_as_the_customer_says(tmp_path):
    """Two on-call contacts, ``callout_retries`` 1 and ``callout_retry_after`` 10 minutes:
    Joe, no answer, Ann at once, no answer; ten minutes later Joe, then Ann, who answers.
    The slip shows each step."""
    import queue

    from firmware.core.state import PlacedCallOutcome, ScheduledCallDue

    cs = Customers(tmp_path)
    cs.add({**HOLD_MARY, "on_call": [{"label": "Joe", "number": "555-0142"},
                                     {"label": "Ann", "number": "555-0143"}],
            "callout_retries": 1, "callout_retry_after": 10})
    cs.close()
    d, a, sched, now = _callout_rig(tmp_path)

    def placed():
        """The calls the board was asked to place since last looked."""
        out = []
        while True:
            try:
                e = d.events.get_nowait()
            except queue.Empty:
                return out
            if isinstance(e, ScheduledCallDue):
                out.append((e.number, e.attempt))
                last[0] = e

    def callout():
        return d.call("deadbox", slip=slip)["slips"][0]["callout"]

    def outcome(call, what):
        sched.handle(PlacedCallOutcome(last[0].occurrence, call, what))

    last = [None]
    try:
        d.call("draft", position=1, line="201", fields={"message": "server room flooding"},
               urgent=True)
        slip = d.call("pad-stamp", position=1)["stamp"]["slip"]
        settle(a)
        assert callout() == {"state": "scheduled", "number": "5550142", "due": "2026-11-24 15:01"}
        now[0] += dt.timedelta(seconds=45)
        sched.poll()
        assert placed() == [("5550142", 1)]
        outcome("w0-1", "no-answer")                  # Joe does not answer: Ann, at once
        assert placed() == [("5550143", 1)]
        assert callout()["state"] == "calling" and callout()["number"] == "5550143"
        now[0] += dt.timedelta(seconds=40)
        outcome("w0-2", "no-answer")                  # nobody answered: again in 10 minutes
        assert placed() == [] and callout()["state"] == "retry"
        now[0] += dt.timedelta(minutes=9, seconds=59)
        sched.poll()
        assert placed() == []
        now[0] += dt.timedelta(seconds=1)
        sched.poll()
        assert placed() == [("5550142", 2)]           # the second round starts with Joe
        outcome("w0-3", "failed")
        assert placed() == [("5550143", 2)]
        outcome("w0-4", "answered")
        co = callout()
        assert co["state"] == "answered" and co["number"] == "5550143" and co["attempts"] == 2
        assert co["tried"] == ["5550142", "5550143", "5550142", "5550143"]
        assert co["calls"] == ["w0-1", "w0-2", "w0-3", "w0-4"]
        now[0] += dt.timedelta(hours=1)
        sched.poll()
        assert placed() == []                         # answered: nothing more
    finally:
        sched.stop()
        a.stop()


def test_ok__urgent_call_out_without_retries_calls_each_contact_once(tmp_path):
    from firmware.core.state import PlacedCallOutcome, ScheduledCallDue

    cs = Customers(tmp_path)
    cs.add({**HOLD_MARY, "on_call": [{"label": "Joe", "number": "555-0142"},
                                     {"label": "Ann", "number": "555-0143"}],
            "callout_retries": 0})
    cs.close()
    d, a, sched, now = _callout_rig(tmp_path)
    try:
        d.call("draft", position=1, line="201", fields={"message": "gas smell"}, urgent=True)
        slip = d.call("pad-stamp", position=1)["stamp"]["slip"]
        settle(a)
        now[0] += dt.timedelta(seconds=45)
        sched.poll()
        for call in ("w0-1", "w0-2"):
            [due] = [e for e in list(d.events.queue) if isinstance(e, ScheduledCallDue)][-1:]
            sched.handle(PlacedCallOutcome(due.occurrence, call, "no-answer"))
        co = d.call("deadbox", slip=slip)["slips"][0]["callout"]
        assert co["state"] == "no-answer" and co["tried"] == ["5550142", "5550143"]
        assert co["attempts"] == 1
        now[0] += dt.timedelta(hours=1)
        assert sched.scheduler.tick(now[0]) == []
    finally:
        sched.stop()
        a.stop()
