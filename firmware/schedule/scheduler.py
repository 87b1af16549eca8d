"""Wake-up and appointment-reminder calls: a durable schedule and its clock.

A schedule belongs to a customer: the number to call, what to say, when (a
time of day, once on a date, daily or on weekdays) and how: ``auto`` (the board
places the call and plays the message) or ``operator`` (the office line's
lamp winks and the card is shown; the operator places it). An unanswered call
is tried again ``retries`` times, ``retry_after_s`` apart. With
``next_numbers`` (an urgent message's on-call list) each unanswered call goes
on at once to the next number, and a retry starts again from ``number``: one
round is every number in turn. Every occurrence ends in the log with its
outcome, the numbers tried and call ids, which billing counts.

``Scheduler`` is plain logic over a JSON state file and an injected time:
``tick(now)`` returns the events to post (``ScheduledCallDue``), and
``placed(...)`` / ``operator_done(...)`` take the outcomes. The state is written
(temporary file, fsync, rename, fsync of the directory) *before* the events
are handed out, so a crash at any point leaves the last complete state: a call
that was due is then either still to be made or already recorded, never lost
(at worst a call in flight when the power went is made again).

While the daemon is down nothing rings; on the first tick after a restart
every occurrence that fell due since the last tick is looked at: one less
than ``late_limit_s`` late is placed now (noted as late); an older one is
recorded as missed and put on the board as a card for the operator, so it is
always either handled or reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from firmware.errors import ConfigError, ControlError, SwitchboardError
from firmware.records.files import atomic_write_json
from firmware.core.state import PlacedCallOutcome, ScheduledCallCleared, ScheduledCallDue
from firmware.runtime.adapter import Adapter, Context
from firmware.runtime.commands import Arg, Command

REPEATS = ("once", "daily", "weekdays")
MODES = ("auto", "operator")
KINDS = ("wakeup", "reminder")
#: A placed call that has not reported back after ring time plus this is
#: taken as failed (the telephony went away), so it is retried, not stuck.
CALL_TIMEOUT_MARGIN_S = 120.0
_NUMBER = re.compile(r"^(\+?[0-9*#]{2,20}|sips?:[^\s@<>]+@[^\s<>]+)$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")

DEFAULTS = {"repeat": "once", "mode": "auto", "line": None, "retries": 2, "retry_after_s": 300,
            "ring_s": 30, "late_limit_s": 900, "until": None, "active": True, "next_numbers": []}


class ScheduleError(SwitchboardError, ValueError):
    """A schedule asked for cannot be carried out (unknown id, bad outcome)."""


def check_schedule(rec: dict, where=("schedule", "")) -> dict:
    """A schedule entry with defaults filled in; every mistake names the key."""
    f, kp = where
    kp = kp + "." if kp else ""
    if not isinstance(rec, dict):
        raise ConfigError(f, kp.rstrip("."), rec, "a schedule (an object)")
    allowed = {"id", "customer", "kind", "number", "message", "time", "date", "created"} | set(DEFAULTS)
    for k in rec:
        if k not in allowed:
            raise ConfigError(f, kp + k, rec[k], "one of " + ", ".join(sorted(allowed)))
    out = {**DEFAULTS, **rec}

    def need(key, ok, expected):
        if key not in rec and key not in DEFAULTS:
            raise ConfigError(f, kp + key, None, None, message=f"{f}: {kp}{key}: missing; expected {expected}")
        if not ok(out[key]):
            raise ConfigError(f, kp + key, out[key], expected)

    need("id", lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", v),
         "an id of letters, digits, '-', '_' or '.'")
    need("customer", lambda v: isinstance(v, str) and v, "the customer's id")
    need("kind", lambda v: v in KINDS, "\"wakeup\" or \"reminder\"")
    need("number", lambda v: isinstance(v, str) and _NUMBER.match(v), "a number to dial (digits) or a SIP URI")
    need("next_numbers", lambda v: isinstance(v, list) and len(v) <= 20 and all(
        isinstance(n, str) and _NUMBER.match(n) for n in v),
        "a list of up to 20 numbers to call in turn when one does not answer")
    need("message", lambda v: isinstance(v, str) and v.strip(), "what to say (text, or file:<path>)")
    need("time", lambda v: isinstance(v, str) and _TIME.match(v), "a time of day \"HH:MM\" (24-hour)")
    need("date", lambda v: isinstance(v, str) and _date(v) is not None, "a date \"YYYY-MM-DD\" (the first day)")
    need("repeat", lambda v: v in REPEATS, "one of " + ", ".join(REPEATS))
    need("mode", lambda v: v in MODES, "\"auto\" (the board calls) or \"operator\"")
    need("line", lambda v: v is None or isinstance(v, str), "an office line number or null")
    for key in ("retries", "retry_after_s", "ring_s", "late_limit_s"):
        need(key, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 86400,
             "a number from 0 to 86400")
    need("until", lambda v: v is None or (isinstance(v, str) and _date(v) is not None), "a date or null")
    need("active", lambda v: isinstance(v, bool), "true or false")
    return out


def numbers(sched: dict) -> list[str]:
    """Whom a schedule calls, in turn: ``number``, then its ``next_numbers``."""
    return [sched.get("number"), *sched.get("next_numbers", ())]


def _date(text):
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def occurrences(sched: dict, after: datetime, upto: datetime, tz) -> list[datetime]:
    """Due times of ``sched`` in (after, upto], in order."""
    if not sched["active"]:
        return []
    hh, mm = (int(x) for x in sched["time"].split(":"))
    first = date.fromisoformat(sched["date"])
    until = date.fromisoformat(sched["until"]) if sched["until"] else None
    day = max(first, after.astimezone(tz).date())
    last = upto.astimezone(tz).date()
    out = []
    while day <= last:
        if until is not None and day > until:
            break
        ok = (sched["repeat"] == "daily" or (sched["repeat"] == "weekdays" and day.weekday() < 5)
              or (sched["repeat"] == "once" and day == first))
        if ok:
            due = datetime.combine(day, time(hh, mm), tz)
            if after < due <= upto:
                out.append(due)
        if sched["repeat"] == "once" and day >= first:
            break
        day += timedelta(days=1)
    return out


@dataclass
class _Occ:
    id: str
    schedule: str
    due: str
    attempt: int = 1
    state: str = "due"            # due, calling, retry, alerted
    next_at: str | None = None    # for retry: when; for calling: give up at
    calls: list = None
    note: str = ""
    mode: str = ""                # how this attempt is made: "auto" or "operator"
    contact: int = 0              # which of the schedule's numbers this call is to
    tried: list = None            # the number of each call made, in order

    def to_json(self):
        return {"id": self.id, "schedule": self.schedule, "due": self.due, "attempt": self.attempt,
                "state": self.state, "next_at": self.next_at, "calls": self.calls or [], "note": self.note,
                "mode": self.mode, "contact": self.contact, "tried": self.tried or []}

    def number(self, sched: dict) -> str | None:
        nums = numbers(sched)
        return nums[self.contact] if self.contact < len(nums) else nums[0]


class Scheduler:
    """The schedule and its open calls, kept in one JSON file."""

    LOG_KEEP_DAYS = 400
    #: False when the daemon has no telephony: "auto" calls become cards for the operator.
    can_place = True
    SAVE_EVERY_S = 300

    def __init__(self, path, tz=timezone.utc, now: datetime | None = None):
        self.path = Path(path)
        self.tz = tz
        self.schedules: dict[str, dict] = {}
        self.open: dict[str, _Occ] = {}
        self.log: list[dict] = []
        self.checked_until: datetime | None = None
        self.save_error: str | None = None
        self._load()
        self._saved_until = self.checked_until
        if self.checked_until is None:
            self.checked_until = now or datetime.now(timezone.utc)
            self._save()

    # -- persistence -----------------------------------------------------
    def _load(self):
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(self.path, "", None, None, message=(
                f"{self.path}: not valid JSON ({e.msg} at line {e.lineno}); it is only ever replaced "
                "whole, so this is damage: restore it from a backup")) from None
        self.checked_until = datetime.fromisoformat(data["checked_until"]) if data.get("checked_until") else None
        for i, s in enumerate(data.get("schedules", [])):
            s = check_schedule(s, (str(self.path), f"schedules[{i}]"))
            self.schedules[s["id"]] = s
        for o in data.get("open", []):
            self.open[o["id"]] = _Occ(**o)
        self.log = list(data.get("log", []))

    def _save(self, strict: bool = False):
        """Write the state. A disk that fails is remembered in ``save_error``
        (the adapter lights the fault lamp) and the calls still go out; with
        ``strict`` (a change someone asked for) it is an error they see."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, {
                "version": 1, "checked_until": self.checked_until.isoformat(),
                "schedules": list(self.schedules.values()),
                "open": [o.to_json() for o in self.open.values()], "log": self.log})
        except OSError as e:
            self.save_error = f"cannot save {self.path}: {e.strerror or e}"
            if strict:
                raise ScheduleError(self.save_error + "; nothing was changed on disk") from None
            return
        self.save_error = None
        self._saved_until = self.checked_until

    # -- the schedule ----------------------------------------------------
    def add(self, sched: dict, now: datetime) -> dict:
        """Add or replace a schedule; only due times after ``now`` are called."""
        s = check_schedule({**sched, "created": now.isoformat()})
        if s["active"] and not occurrences(s, now, now + timedelta(days=3660), self.tz):
            raise ScheduleError(f"schedule {s['id']!r}: it would never call again after "
                                f"{now.astimezone(self.tz):%Y-%m-%d %H:%M} (date, time or until "
                                "are in the past); nothing was changed")
        old = self.schedules.get(s["id"])
        self.schedules[s["id"]] = s
        try:
            self._save(strict=True)
        except ScheduleError:
            if old is None:
                del self.schedules[s["id"]]
            else:
                self.schedules[s["id"]] = old
            raise
        return s

    def remove(self, sched_id: str, now: datetime) -> list:
        """Remove a schedule; its open calls are cancelled (logged). Returns events."""
        if sched_id not in self.schedules:
            raise ScheduleError(f"no schedule {sched_id!r}; known: {', '.join(sorted(self.schedules)) or 'none'}")
        del self.schedules[sched_id]
        events = []
        for o in [o for o in self.open.values() if o.schedule == sched_id]:
            self._finish(o, "cancelled", now)
            events.append(ScheduledCallCleared(o.id))
        self._save()
        return events

    # -- the clock -------------------------------------------------------
    def tick(self, now: datetime) -> list:
        """What is due at ``now``: the events to post (state already saved)."""
        events = []
        after = self.checked_until
        if now > after:
            for s in self.schedules.values():
                created = datetime.fromisoformat(s["created"]) if s.get("created") else after
                for due in occurrences(s, max(after, created), now, self.tz):
                    occ = _Occ(id=f"{s['id']}@{due.astimezone(timezone.utc):%Y%m%dT%H%MZ}", schedule=s["id"],
                               due=due.isoformat(), calls=[])
                    if occ.id in self.open or occ.id in self._logged():
                        continue
                    self.open[occ.id] = occ
                    late = (now - due).total_seconds()
                    if late > s["late_limit_s"]:
                        occ.note = (f"missed: due {due.astimezone(self.tz):%Y-%m-%d %H:%M}, "
                                    f"the board was down until {now.astimezone(self.tz):%H:%M}")
                        self._finish(occ, "missed", now, keep_open=True)
                        occ.state = "alerted"
                        events.append(self._due_event(s, occ, mode="operator"))
                        continue
                    if late > 60:
                        occ.note = f"{late / 60:.0f} min late: the board was down at the due time"
                    events.append(self._start(s, occ, now))
            self.checked_until = now
        for occ in list(self.open.values()):
            s = self.schedules.get(occ.schedule)
            if s is None:
                continue
            at = datetime.fromisoformat(occ.next_at) if occ.next_at else None
            if occ.state == "retry" and at <= now:
                occ.attempt += 1
                events.append(self._start(s, occ, now))
            elif occ.state == "calling" and at <= now:
                occ.calls.append(None)
                events += self._after_attempt(s, occ, "failed", now, why="no report from the telephony")
        # The checked time alone is written only every few minutes (an SD card
        # wears): after a crash, at most those minutes are looked at again, and
        # what was due in them is in the log or open already, so not repeated.
        if events or (self.checked_until - self._saved_until).total_seconds() >= self.SAVE_EVERY_S:
            self._save()
        return events

    def next_due(self, now: datetime) -> datetime | None:
        """When ``tick`` next has something to do (for a loop that sleeps till then)."""
        times = [datetime.fromisoformat(o.next_at) for o in self.open.values()
                 if o.state in ("retry", "calling") and o.next_at]
        for s in self.schedules.values():
            nxt = occurrences(s, now, now + timedelta(days=8), self.tz)
            if nxt:
                times.append(nxt[0])
        return min(times) if times else None

    def _logged(self) -> set:
        return {e["occurrence"] for e in self.log[-500:]}

    def _due_event(self, s, occ, mode=None):
        return ScheduledCallDue(occ.id, s["id"], s["customer"], s["kind"], occ.number(s), s["message"],
                                s["line"], mode or occ.mode or s["mode"], occ.attempt, occ.due, occ.note,
                                float(s.get("ring_s", DEFAULTS["ring_s"])))

    def _start(self, s, occ, now):
        occ.tried = [*(occ.tried or []), occ.number(s)]
        occ.mode = s["mode"]
        if occ.mode == "auto" and not self.can_place:
            occ.mode = "operator"
            occ.note = "the board cannot place calls (no telephony): place it by hand"
        if occ.mode == "operator":
            occ.state, occ.next_at = "alerted", None
        else:
            occ.state = "calling"
            occ.next_at = (now + timedelta(seconds=s["ring_s"] + CALL_TIMEOUT_MARGIN_S)).isoformat()
        return self._due_event(s, occ)

    def _after_attempt(self, s, occ, outcome, now, why=""):
        cleared = [ScheduledCallCleared(occ.id)] if (occ.mode or s["mode"]) == "operator" else []
        if outcome == "answered":
            self._finish(occ, "answered", now)
            return cleared
        if occ.contact + 1 < len(numbers(s)):
            occ.contact += 1                 # the next number in turn, at once
            if why:
                occ.note = why
            return cleared + [self._start(s, occ, now)]
        if occ.attempt <= s["retries"]:
            occ.contact = 0                  # the next round starts from the first number
            occ.state = "retry"
            occ.next_at = (now + timedelta(seconds=s["retry_after_s"])).isoformat()
            if why:
                occ.note = why
            return cleared
        self._finish(occ, "no-answer" if outcome in ("no-answer", "abandoned") else outcome, now)
        return cleared

    def _finish(self, occ, outcome, now, keep_open=False):
        s = self.schedules.get(occ.schedule, {})
        self.log.append({"occurrence": occ.id, "schedule": occ.schedule, "customer": s.get("customer"),
                         "kind": s.get("kind"), "number": occ.number(s), "tried": occ.tried or [],
                         "due": occ.due,
                         "outcome": outcome, "attempts": occ.attempt if outcome != "missed" else 0,
                         "calls": [c for c in (occ.calls or []) if c], "finished": now.isoformat(),
                         "note": occ.note})
        if not keep_open:
            self.open.pop(occ.id, None)
        cutoff = (now - timedelta(days=self.LOG_KEEP_DAYS)).isoformat()
        if self.log and self.log[0]["finished"] < cutoff:
            self.log = [e for e in self.log if e["finished"] >= cutoff]

    # -- outcomes ----------------------------------------------------------
    def placed(self, occurrence: str, call: str | None, outcome: str, now: datetime,
               reason: str = "") -> list:
        """The telephony's report on a placed call. Returns events to post."""
        occ = self.open.get(occurrence)
        if occ is None or occ.state not in ("calling", "retry"):
            return []
        if occ.state == "retry" and outcome != "answered":
            return []        # a late report for an attempt already given up on
        s = self.schedules.get(occ.schedule)
        occ.calls.append(call)
        if reason:
            occ.note = reason
        events = self._after_attempt(s, occ, outcome, now) if s else []
        if s is None:
            self._finish(occ, outcome, now)
        self._save()
        return events

    def operator_done(self, occurrence: str, outcome: str, now: datetime, call: str | None = None) -> list:
        """The operator placed (or gave up on) a call shown on the board."""
        if outcome not in ("answered", "no-answer", "failed", "cancelled"):
            raise ScheduleError(f"outcome {outcome!r}: expected answered, no-answer, failed or cancelled")
        occ = self.open.get(occurrence)
        if occ is None:
            raise ScheduleError(f"no open scheduled call {occurrence!r}; open: "
                                + (", ".join(sorted(self.open)) or "none"))
        s = self.schedules.get(occ.schedule)
        if occ.state == "alerted" and any(e["occurrence"] == occ.id and e["outcome"] == "missed"
                                          for e in self.log[-200:]):
            # A missed call's card: the operator reports what they did about it.
            occ.calls.append(call)
            self.open.pop(occ.id, None)
            self.log.append({**[e for e in self.log if e["occurrence"] == occ.id][-1],
                             "outcome": f"missed, then {outcome} by the operator",
                             "calls": [c for c in occ.calls if c], "finished": now.isoformat()})
            self._save()
            return [ScheduledCallCleared(occ.id)]
        occ.calls.append(call)
        if outcome == "cancelled" or s is None:
            self._finish(occ, outcome, now)
            events = [ScheduledCallCleared(occ.id)]
        else:
            events = self._after_attempt(s, occ, outcome, now)
        self._save()
        return events

    def cards(self) -> list:
        """The cards waiting for an operator (posted again after a restart:
        the board itself forgets them)."""
        return [self._due_event(self.schedules.get(o.schedule) or {}, o, mode="operator")
                for o in self.open.values() if o.state == "alerted" and o.schedule in self.schedules]

    def status(self) -> dict:
        return {"schedules": len(self.schedules), "open": [o.to_json() for o in self.open.values()],
                "checked_until": self.checked_until.isoformat(), "logged": len(self.log)}


def billing_records(log: list[dict], calls: list[dict]) -> list[dict]:
    """Call records with the scheduler's knowledge added: a placed call's record
    gets the customer and kind if the telephony did not write them, and a call
    an operator reported answered without a record gets one, so it is billed."""
    by_id = {str(r.get("id")): r for r in calls}
    out = [dict(r) for r in calls]
    index = {str(r.get("id")): i for i, r in enumerate(out)}
    for e in log:
        if e.get("kind") not in KINDS:
            continue
        ids = [c for c in e.get("calls", []) if c]
        for cid in ids:
            if cid in by_id:
                r = out[index[cid]]
                r.setdefault("customer", e["customer"])
                if r.get("kind") in (None, "call"):
                    r["kind"] = e["kind"]
        answered = e["outcome"] == "answered" or e["outcome"].endswith("then answered by the operator")
        if answered and not any(c in by_id for c in ids):
            out.append({"id": f"sched-{e['occurrence']}", "line": "", "direction": "out", "kind": e["kind"],
                        "caller": "", "callee": e.get("number") or "", "offered": e["finished"],
                        "answered": e["finished"], "ended": e["finished"], "rings": 0, "position": None,
                        "hold_s": 0, "outcome": "answered", "customer": e["customer"],
                        "schedule": e["schedule"], "note": "reported by the operator"})
    return out


class ScheduleAdapter(Adapter):
    """The scheduler in the daemon: ticks on the daemon's loop, posts
    ``ScheduledCallDue``, takes ``PlacedCallOutcome``; control commands
    ``schedule-add``, ``schedule-remove``, ``schedule-list``, ``schedule-done``."""

    name = "schedule"

    def __init__(self, path, tz=timezone.utc, clock=None, period_s: float = 1.0,
                 can_place: bool = True):
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.period_s = period_s
        self.ctx: Context | None = None
        self._task = None
        self.errors = 0
        self._faulted = False
        self.data_dir = Path(path).parent
        try:
            self.scheduler = Scheduler(path, tz, self.clock())
            self.error = None
        except (ConfigError, OSError) as e:
            # A damaged schedule puts only the scheduled calls out of service.
            self.scheduler, self.error = None, str(e)
        if self.scheduler is not None:
            # Without telephony, "auto" calls become cards for the operator.
            self.scheduler.can_place = can_place

    def commands(self) -> list[Command]:
        return [
            Command("schedule-add", self._cmd_add, (Arg("schedule", dict),),
                    "add a schedule: {schedule: {...}}, or its fields themselves"),
            Command("schedule-remove", self._cmd_remove, (Arg("id", required=True),),
                    "remove a schedule and cancel its open calls"),
            Command("schedule-list", self._cmd_list, (Arg("last", int, default=50, min=0),),
                    "the schedules, open calls and the last log entries"),
            Command("schedule-done", self._cmd_done,
                    (Arg("occurrence", required=True), Arg("outcome", required=True),
                     Arg("call")),
                    "the operator placed (or gave up on) a call shown on the board"),
        ]

    def start(self, ctx: Context):
        self.ctx = ctx
        if self.scheduler is None:
            self.ctx.fault("schedule", f"scheduled calls out of service: {self.error}")
            return
        self._post(self.scheduler.cards())                # cards shown before the restart
        self.poll()                                       # what fell due while we were down
        if ctx.loop is not None:
            self._task = ctx.loop.create_task(self._run())

    async def _run(self):
        import asyncio
        while True:
            await asyncio.sleep(self.period_s)
            self.poll()

    def poll(self):
        """One tick (the loop calls this every ``period_s``)."""
        self._post(self.scheduler.tick(self.clock()))
        self._disk()

    def _disk(self):
        """The fault lamp while the schedule cannot be saved; out when it can again."""
        err = self.scheduler.save_error
        if err and not self._faulted:
            self.errors += 1
            self._faulted = True
            self.ctx.fault("schedule", err)
        elif not err and self._faulted:
            self._faulted = False
            self.ctx.fault("schedule", None)

    def _post(self, events):
        for e in events:
            self.ctx.post(e)

    def handle(self, command):
        if isinstance(command, PlacedCallOutcome) and self.scheduler is not None:
            self._post(self.scheduler.placed(command.occurrence, command.call, command.outcome,
                                             self.clock(), command.reason))
            self._disk()

    def status(self) -> dict:
        if self.scheduler is None:
            return {"state": "out of service", "error": self.error}
        return {"state": "running", **self.scheduler.status(), "errors": self.errors,
                "save_error": self.scheduler.save_error}

    # -- urgent messages called out (the time clock asks) ---------------------
    def call_out(self, schedule_id: str, customer: str, numbers: list[str], message: str,
                 retries: int = 2, retry_after_s: float = 300) -> None:
        """Call ``numbers`` in turn, from the next whole minute, and speak ``message``:
        an urgent message for a customer's on-call contacts; nobody answering, the
        round is made again ``retries`` times, ``retry_after_s`` apart. Safe from any
        thread; the schedule is on disk once the loop has run it. Billed as a
        reminder call."""
        def add():
            if self.scheduler is None or schedule_id in self.scheduler.schedules:
                return
            now = self.clock()
            due = (now.astimezone(self.scheduler.tz) + timedelta(seconds=60)).replace(
                second=0, microsecond=0)
            try:
                # The first 21 contacts: a schedule's limit (next_numbers up to 20).
                self.scheduler.add({"id": schedule_id, "customer": customer, "kind": "reminder",
                                    "number": numbers[0], "next_numbers": list(numbers[1:21]),
                                    "message": message,
                                    "date": due.date().isoformat(), "time": f"{due:%H:%M}",
                                    "retries": retries, "retry_after_s": retry_after_s}, now)
            except (ScheduleError, ConfigError) as e:
                self.ctx.log.error("urgent call-out %s: %s", schedule_id, e)
                self.ctx.fault("schedule", f"urgent call-out {schedule_id} not placed: {e}")
        loop = self.ctx.loop if self.ctx is not None else None
        if loop is not None:
            loop.call_soon_threadsafe(add)
        else:
            add()

    def call_out_state(self, schedule_id: str) -> dict | None:
        """How a call-out went: "scheduled", "calling", "retry", or its outcome from the log."""
        sch = self.scheduler
        if sch is None:
            return None
        for e in reversed(sch.log):
            if e["schedule"] == schedule_id:
                return {"state": e["outcome"], "number": e.get("number"),
                        "attempts": e.get("attempts"), "calls": e.get("calls"),
                        "tried": e.get("tried", []), "finished": e.get("finished"),
                        "note": e.get("note")}
        for o in sch.open.values():
            if o.schedule == schedule_id:
                return {"state": o.state, "attempts": o.attempt, "note": o.note,
                        "number": o.number(sch.schedules.get(schedule_id, {})),
                        "tried": o.tried or []}
        if schedule_id in sch.schedules:
            s = sch.schedules[schedule_id]
            return {"state": "scheduled", "number": s["number"], "due": f"{s['date']} {s['time']}"}
        return None

    def _need(self) -> "Scheduler":
        if self.scheduler is None:
            raise ScheduleError(f"scheduled calls are out of service: {self.error}")
        return self.scheduler

    def stop(self):
        if self._task is not None:
            self._task.cancel()

    async def _cmd_add(self, args):
        rec = args.get("schedule") or args
        msg = rec.get("message") if isinstance(rec, dict) else None
        if isinstance(msg, str) and msg.startswith("file:"):
            # Over the control socket a recorded message must be a file in the data dir.
            root = self.data_dir.resolve()
            path = (root / msg[5:]).resolve() if msg[5:] and "\0" not in msg else root
            if root not in path.parents:
                raise ControlError(f"schedule-add: message = {msg[:80]!r}: expected file:<a WAV "
                                   f"file in the data directory {root}>")
            rec = {**rec, "message": f"file:{path}"}
        return {"ok": True, "schedule": self._need().add(rec, self.clock())}

    async def _cmd_remove(self, args):
        self._post(self._need().remove(args["id"], self.clock()))
        return {"ok": True}

    async def _cmd_list(self, args):
        s = self._need()
        return {"ok": True, "schedules": list(s.schedules.values()), "open": s.status()["open"],
                "log": s.log[-args["last"]:]}

    async def _cmd_done(self, args):
        self._post(self._need().operator_done(args["occurrence"], args["outcome"],
                                              self.clock(), args.get("call")))
        return {"ok": True}
