"""The board's state: events in, commands out, no I/O, clock passed in.

``BoardState.handle(event, now)`` and ``BoardState.tick(now)`` return lists of
commands. Some drive the hardware (``SetLamp``), some drive the telephony
(``Answer``, ``Hold``, ``Resume``, ``Release``, ``Seize``, ``Join``, ``Dial``),
some the time clock (``StampRequest``); ``LineChanged``, ``KeyReport`` and
``Notice`` tell observers (the control socket, the view) what happened.

Lamps follow key-system practice: flashing while ringing, winking while on
hold, steady while in use, dark when idle. Every flashing or winking lamp takes
its level from one interrupter, a function of the clock, so all are in step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from firmware.config.board import Board

# -- the interrupter -------------------------------------------------------
FLASH_PERIOD = 1.0      # 60 interruptions a minute, half on, half off
FLASH_ON = 0.5
WINK_PERIOD = 0.5       # 120 a minute, on most of the time, a short dark blink
WINK_ON = 0.4


class Cadence(str, enum.Enum):
    DARK = "dark"
    STEADY = "steady"
    FLASH = "flash"
    WINK = "wink"


def interrupter(now: float) -> dict[Cadence, bool]:
    """The level of each cadence at ``now``: one source for every lamp."""
    return {
        Cadence.DARK: False,
        Cadence.STEADY: True,
        Cadence.FLASH: (now % FLASH_PERIOD) < FLASH_ON,
        Cadence.WINK: (now % WINK_PERIOD) < WINK_ON,
    }


_CADENCES = {Cadence.FLASH: (FLASH_PERIOD, FLASH_ON), Cadence.WINK: (WINK_PERIOD, WINK_ON)}


def next_edge(now: float, cadences=(Cadence.FLASH, Cadence.WINK)) -> float:
    """When the interrupter next turns a lamp of one of these cadences on or off."""
    edges = [now + 3600.0]
    for c in cadences:
        period, on = _CADENCES[c]
        base = now - (now % period)
        for t in (base + on, base + period):
            if t > now:
                edges.append(t)
                break
    return min(edges)


class LineState(str, enum.Enum):
    IDLE = "idle"
    RINGING = "ringing"
    OPERATOR = "operator"    # in use by an operator position
    HELD = "held"
    CUSTOMER = "customer"    # in use elsewhere: the customer answered (secrecy)
    BUSY = "busy"            # busied out


# -- events in -------------------------------------------------------------
@dataclass(frozen=True)
class KeyChanged:
    """A key's raw level as read from its pin or chain bit."""
    key: str
    down: bool


@dataclass(frozen=True)
class LineRinging:
    """A call is offered on a line (from the trunk, or the simulator)."""
    line: str
    caller: str | None = None
    call: str | None = None   # the telephony's id for the call


@dataclass(frozen=True)
class CallerIdentified:
    """The caller's number came after the call was offered (an analog line's caller ID
    arrives between the first and second ring; the lamp flashes from the first)."""
    line: str
    caller: str
    call: str | None = None   # the call it belongs to: a later call on the line keeps its own


@dataclass(frozen=True)
class LineCleared:
    """The call on a line is gone (the caller hung up, or the trunk dropped)."""
    line: str
    reason: str = "hangup"


@dataclass(frozen=True)
class CustomerAnswered:
    line: str


@dataclass(frozen=True)
class CustomerHungUp:
    line: str


@dataclass(frozen=True)
class BusyOut:
    line: str
    busy: bool


@dataclass(frozen=True)
class MessageWaiting:
    line: str
    count: int


@dataclass(frozen=True)
class Fault:
    """Something is wrong (a trunk, the printer): the fault lamp lights while any is."""
    source: str
    message: str | None       # None clears the fault


@dataclass(frozen=True)
class DialNumber:
    """Dial a whole number on the line a position has seized (a call-back from a card)."""
    position: int
    number: str


@dataclass(frozen=True)
class LampTest:
    step_s: float = 0.25


@dataclass(frozen=True)
class CardChanged:
    """The time clock's card for a position (or, position None, a ringing line) changed."""
    position: int | None
    line: str | None
    card: dict | None         # None: no card any more


@dataclass(frozen=True)
class KeyTest:
    on: bool


@dataclass(frozen=True)
class ScheduledCallDue:
    """A wake-up or reminder call fell due (from the scheduler).

    ``mode`` "auto": the board places it itself (a ``PlaceCall`` command for
    the telephony); "operator": the office line's lamp winks and the card is
    shown until ``ScheduledCallCleared``. ``note`` says why it is late or
    was missed (the daemon was down), so it is never silently dropped.
    """
    occurrence: str
    schedule_id: str
    customer: str
    kind: str                 # "wakeup" or "reminder"
    number: str
    message: str
    line: str | None          # office line to call from (None: the telephony picks)
    mode: str                 # "auto" or "operator"
    attempt: int = 1
    due: str = ""             # ISO 8601
    note: str = ""
    ring_s: float = 30.0      # how long the called phone may ring


@dataclass(frozen=True)
class ScheduledCallCleared:
    """The operator dealt with a scheduled call's card (or it was cancelled)."""
    occurrence: str


@dataclass(frozen=True)
class PlacedCallEnded:
    """The telephony finished a ``PlaceCall``: its call id and outcome
    (answered, no-answer, failed, ...) and, when it failed, why."""
    occurrence: str
    call: str | None
    outcome: str
    reason: str = ""


# -- commands out ----------------------------------------------------------
@dataclass(frozen=True)
class SetLamp:
    lamp: str
    on: bool


@dataclass(frozen=True)
class LampCadence:
    lamp: str
    cadence: Cadence


@dataclass(frozen=True)
class LineChanged:
    line: str
    state: LineState
    position: int | None
    rings: int


@dataclass(frozen=True)
class KeyReport:
    key: str
    down: bool
    note: str = ""            # "stuck", "ignored: ...", "test"


@dataclass(frozen=True)
class Notice:
    text: str


@dataclass(frozen=True)
class Answer:
    line: str
    position: int


@dataclass(frozen=True)
class Seize:
    """The operator took an idle line to place a call."""
    line: str
    position: int


@dataclass(frozen=True)
class Hold:
    line: str
    position: int


@dataclass(frozen=True)
class Resume:
    line: str
    position: int


@dataclass(frozen=True)
class Release:
    line: str
    position: int
    ends_call: bool           # False when the customer stays on the line


@dataclass(frozen=True)
class Join:
    """The operator joined a line the customer is on (secrecy switch off): logged."""
    line: str
    position: int


@dataclass(frozen=True)
class HoldRecall:
    line: str
    held_s: float


@dataclass(frozen=True)
class Dial:
    position: int
    digit: str
    line: str | None


@dataclass(frozen=True)
class StampRequest:
    position: int
    line: str | None


@dataclass(frozen=True)
class ShowCard:
    """Put a customer's card on a position's screen (position None: offered on a ringing line)."""
    position: int | None
    line: str | None
    card: dict | None


@dataclass(frozen=True)
class SwitchChanged:
    switch: str               # "secrecy" or "split"
    on: bool


@dataclass(frozen=True)
class PlaceCall:
    """For the telephony: call ``number`` on an office line and play
    ``message`` (text to speak, or ``file:<path>`` of a recording); report the
    end with a ``PlacedCallEnded`` event. The call record should carry
    ``kind`` and ``customer`` so the call is billed."""
    number: str
    message: str
    kind: str
    schedule_id: str
    occurrence: str
    customer: str
    line: str | None = None
    attempt: int = 1
    ring_s: float = 30.0


@dataclass(frozen=True)
class PlacedCallOutcome:
    """For the scheduler: how a placed call ended (echo of ``PlacedCallEnded``)."""
    occurrence: str
    call: str | None
    outcome: str
    reason: str = ""


# -- the state -------------------------------------------------------------
@dataclass
class _Line:
    state: LineState = LineState.IDLE
    position: int | None = None
    rings: int = 0
    ring_start: float | None = None
    held_since: float | None = None
    recalled: bool = False
    customer_on: bool = False
    outgoing: bool = False    # seized by an operator to place a call
    caller: str | None = None
    call: str | None = None
    messages: int = 0


@dataclass
class _Key:
    level: bool = False       # the accepted (debounced) level
    raw: bool = False
    locked_until: float = 0.0
    stuck: bool = False


@dataclass
class _Position:
    line: str | None = None   # the line this position is talking on
    digits: str = ""


@dataclass
class _LampTestRun:
    order: list
    start: float
    step: float


class BoardState:
    """Everything the board knows, changed only by events and the clock."""

    def __init__(self, board: Board, now: float, keys_down=()):
        self.board = board
        self.lines = {ln.number: _Line() for ln in board.lines}
        self.positions = {p: _Position() for p in range(1, board.positions + 1)}
        self.keys = {name: _Key() for name in board.keys}
        self.switches = {"secrecy": False, "split": False}
        self.faults: dict[str, str] = {}
        self.key_test = False
        self.lamp_test: _LampTestRun | None = None
        self.due_calls: dict[str, ScheduledCallDue] = {}
        self.debounce = board.debounce_ms / 1000.0
        self._cadence = {name: Cadence.DARK for name in board.lamps}
        self._lit = {name: False for name in board.lamps}
        self.started = now
        self._startup = []
        for name in keys_down:
            k = self.keys[name]
            k.level = k.raw = True
            if board.keys[name].latching:
                self.switches[board.keys[name].role] = True   # a switch left on is on
            else:
                k.stuck = True
                self._startup.append(KeyReport(name, True, "stuck: down at start-up, "
                                               "ignored until released"))

    # -- public API ----------------------------------------------------
    def start(self, now: float) -> list:
        """The commands that bring the board to its initial state (resync)."""
        out = list(self._startup)
        self._startup = []
        for name in self._lit:
            out.append(SetLamp(name, False))
        out += self._refresh(now)
        return out

    def handle(self, event, now: float) -> list:
        out: list = []
        method = getattr(self, "_on_" + type(event).__name__, None)
        if method is None:
            raise TypeError(f"unknown event {event!r}")
        method(event, now, out)
        out += self._refresh(now)
        return out

    def tick(self, now: float) -> list:
        out: list = []
        for name, k in self.keys.items():
            if k.raw != k.level and now >= k.locked_until:
                self._accept(name, k.raw, now, out)
        for number, ln in self.lines.items():
            if ln.state is LineState.RINGING:
                rings = 1 + int((now - ln.ring_start) // self.board.ring_seconds)
                if rings != ln.rings:
                    ln.rings = rings
                    out.append(self._line_changed(number))
            elif ln.state is LineState.HELD and not ln.recalled and \
                    now - ln.held_since >= self.board.hold_recall_s:
                ln.recalled = True
                out.append(HoldRecall(number, now - ln.held_since))
                out.append(Notice(f"line {number} has been on hold "
                                  f"{now - ln.held_since:.0f} s: pick it up again"))
        out += self._refresh(now)
        return out

    def next_deadline(self, now: float) -> float:
        """When ``tick`` next has something to do (for a loop that sleeps till then).

        Only what is pending counts: a key's debounce, the interrupter's next
        edge for the cadences lit now, a lamp test's next step, a ringing
        line's next ring, a held line's recall. At most a second away.
        """
        t = now + 1.0
        for k in self.keys.values():
            if k.raw != k.level:
                t = min(t, k.locked_until)
        blinking = {c for c in self._cadence.values() if c in _CADENCES}
        if blinking:
            t = min(t, next_edge(now, blinking))
        run = self.lamp_test
        if run is not None:
            t = min(t, run.start + (int((now - run.start) // run.step) + 1) * run.step)
        ring = self.board.ring_seconds
        for ln in self.lines.values():
            if ln.state is LineState.RINGING:
                t = min(t, ln.ring_start + (int((now - ln.ring_start) // ring) + 1) * ring)
            elif ln.state is LineState.HELD and not ln.recalled:
                t = min(t, ln.held_since + self.board.hold_recall_s)
        return max(t, now)

    def serving_position(self, number: str) -> int:
        if self.board.positions == 1 or not self.switches["split"]:
            return 1
        return self.board.line(number).half

    def snapshot(self, now: float) -> dict:
        """Plain data for the status command and the view."""
        return {
            "board": self.board.name,
            "title": self.board.title,
            "now": now,
            "lines": [{
                "number": ln.number, "label": ln.label, "kind": ln.kind, "half": ln.half,
                "state": self.lines[ln.number].state.value,
                "position": self.lines[ln.number].position,
                "rings": self.lines[ln.number].rings,
                "caller": self.lines[ln.number].caller,
                "messages": self.lines[ln.number].messages,
                "served_by": self.serving_position(ln.number),
            } for ln in self.board.lines],
            "lamps": {name: {"cadence": self._cadence[name].value, "lit": self._lit[name]}
                      for name in self.board.lamps},
            "positions": [{"position": p, "line": pos.line, "digits": pos.digits,
                           "staffed": p == 1 or self.switches["split"]}
                          for p, pos in self.positions.items()],
            "switches": dict(self.switches),
            "keys_down": sorted(n for n, k in self.keys.items() if k.level),
            "stuck": sorted(n for n, k in self.keys.items() if k.stuck),
            "faults": dict(self.faults),
            "key_test": self.key_test,
            "lamp_test": self.lamp_test is not None,
            "due_calls": [{"occurrence": d.occurrence, "schedule": d.schedule_id, "customer": d.customer,
                           "kind": d.kind, "number": d.number, "message": d.message,
                           "line": self._due_line(d), "due": d.due, "attempt": d.attempt, "note": d.note}
                          for d in self.due_calls.values()],
        }

    # -- keys ----------------------------------------------------------
    def _on_KeyChanged(self, ev: KeyChanged, now, out):
        k = self.keys.get(ev.key)
        if k is None:
            raise KeyError(ev.key)
        k.raw = ev.down
        # Leading-edge debounce: act on the first edge at once, then ignore
        # chatter for the debounce time; tick() settles a level that changed
        # meanwhile.
        if now >= k.locked_until and k.raw != k.level:
            self._accept(ev.key, k.raw, now, out)

    def _accept(self, name, down, now, out):
        k = self.keys[name]
        k.level = down
        k.locked_until = now + self.debounce
        spec = self.board.keys[name]
        if k.stuck:
            if not down:
                k.stuck = False
                out.append(KeyReport(name, False, "released after start-up: now in service"))
            return
        if self.key_test:
            out.append(KeyReport(name, down, "test"))
            return
        out.append(KeyReport(name, down))
        if spec.latching:
            self.switches[spec.role] = down
            out.append(SwitchChanged(spec.role, down))
            return
        if not down:
            return
        if spec.role == "line":
            self._line_key(spec.line, now, out)
            return
        p = spec.position
        if p != 1 and not self.switches["split"]:
            out.append(Notice(f"position {p} is not in service: turn the split key first"))
            return
        getattr(self, "_" + spec.role + "_key")(p, spec, now, out)

    def _line_key(self, number, now, out):
        ln = self.lines[number]
        p = self.serving_position(number)
        pos = self.positions[p]
        if ln.state is LineState.BUSY:
            out.append(Notice(f"line {number} is busied out"))
            return
        if ln.state is LineState.OPERATOR:
            if ln.position != p:
                out.append(Notice(f"line {number} is in use by position {ln.position}"))
            return
        if ln.state is LineState.CUSTOMER and self.switches["secrecy"]:
            out.append(Notice(f"line {number}: the customer has answered; "
                              "secrecy keeps the operator off the line"))
            return
        # Never drop a caller by picking up another line: hold the one we were on.
        if pos.line is not None and pos.line != number:
            self._hold(pos.line, p, now, out)
        state = ln.state
        ln.position, ln.recalled, ln.held_since = p, False, None
        pos.line, pos.digits = number, ""
        if state is LineState.RINGING:
            ln.state = LineState.OPERATOR
            out.append(Answer(number, p))
        elif state is LineState.HELD:
            ln.state = LineState.OPERATOR
            out.append(Resume(number, p))
        elif state is LineState.CUSTOMER:   # secrecy off: join, and it is logged
            ln.state, ln.customer_on = LineState.OPERATOR, True
            out.append(Join(number, p))
            out.append(Notice(f"position {p} joined line {number} with the customer on it "
                              "(secrecy off)"))
        else:
            ln.state, ln.outgoing = LineState.OPERATOR, True
            out.append(Seize(number, p))
        ln.rings = ln.rings if state is LineState.RINGING else 0
        out.append(self._line_changed(number))

    def _hold(self, number, p, now, out):
        ln = self.lines[number]
        ln.state, ln.held_since, ln.recalled = LineState.HELD, now, False
        self.positions[p].line = None
        out.append(Hold(number, p))
        out.append(self._line_changed(number))

    def _hold_key(self, p, spec, now, out):
        number = self.positions[p].line
        if number is None:
            out.append(Notice(f"position {p}: hold, but no line is picked up"))
            return
        self._hold(number, p, now, out)

    def _release_key(self, p, spec, now, out):
        pos = self.positions[p]
        number, pos.line, pos.digits = pos.line, None, ""
        if number is None:
            return
        ln = self.lines[number]
        if ln.customer_on:
            ln.state, ln.position = LineState.CUSTOMER, None
            out.append(Release(number, p, ends_call=False))
        else:
            self._clear(number)
            out.append(Release(number, p, ends_call=True))
        out.append(self._line_changed(number))

    def _stamp_key(self, p, spec, now, out):
        out.append(StampRequest(p, self.positions[p].line))

    def _dial_key(self, p, spec, now, out):
        pos = self.positions[p]
        pos.digits += spec.digit
        out.append(Dial(p, spec.digit, pos.line))

    def _on_DialNumber(self, ev: DialNumber, now, out):
        pos = self.positions.get(ev.position)
        if pos is None:
            raise KeyError(f"position {ev.position}")
        number = pos.line
        if number is None or not self.lines[number].outgoing or pos.digits:
            out.append(Notice(f"position {ev.position}: seize an idle office line (and dial "
                              "nothing on it) first, then call back"))
            return
        for digit in ev.number + "#":
            pos.digits += digit
            out.append(Dial(ev.position, digit, number))
        self.lines[number].outgoing = False     # dialled: later digits are tones on the call

    # -- the lines' far side --------------------------------------------
    def _on_LineRinging(self, ev: LineRinging, now, out):
        ln = self.lines[ev.line]
        if ln.state is not LineState.IDLE:
            out.append(Notice(f"line {ev.line} is {ln.state.value}: call not offered"))
            return
        ln.state, ln.rings, ln.ring_start = LineState.RINGING, 1, now
        ln.caller, ln.call = ev.caller, ev.call
        out.append(self._line_changed(ev.line))

    def _on_CallerIdentified(self, ev: CallerIdentified, now, out):
        ln = self.lines[ev.line]
        if ln.state in (LineState.IDLE, LineState.BUSY) or (ev.call is not None and ln.call != ev.call):
            return
        ln.caller = ev.caller
        out.append(self._line_changed(ev.line))     # the card is looked up again

    def _on_LineCleared(self, ev: LineCleared, now, out):
        ln = self.lines[ev.line]
        if ln.state in (LineState.IDLE, LineState.BUSY):
            return
        for pos in self.positions.values():
            if pos.line == ev.line:
                pos.line, pos.digits = None, ""
        self._clear(ev.line)
        out.append(self._line_changed(ev.line))

    def _on_CustomerAnswered(self, ev: CustomerAnswered, now, out):
        ln = self.lines[ev.line]
        if ln.state is LineState.OPERATOR:
            ln.customer_on = True   # the customer may join a call the operator took
        elif ln.state in (LineState.RINGING, LineState.HELD, LineState.IDLE):
            ln.state, ln.customer_on, ln.position = LineState.CUSTOMER, True, None
            ln.held_since, ln.recalled = None, False
        out.append(self._line_changed(ev.line))

    def _on_CustomerHungUp(self, ev: CustomerHungUp, now, out):
        ln = self.lines[ev.line]
        ln.customer_on = False
        if ln.state is LineState.CUSTOMER:
            self._clear(ev.line)
        out.append(self._line_changed(ev.line))

    def _on_BusyOut(self, ev: BusyOut, now, out):
        ln = self.lines[ev.line]
        if ev.busy and ln.state is not LineState.IDLE and ln.state is not LineState.BUSY:
            out.append(Notice(f"line {ev.line} is {ln.state.value}: busy it out once idle"))
            return
        ln.state = LineState.BUSY if ev.busy else LineState.IDLE
        out.append(self._line_changed(ev.line))

    def _on_MessageWaiting(self, ev: MessageWaiting, now, out):
        self.lines[ev.line].messages = ev.count
        out.append(self._line_changed(ev.line))

    def _on_Fault(self, ev: Fault, now, out):
        if ev.message is None:
            self.faults.pop(ev.source, None)
        else:
            self.faults[ev.source] = ev.message
            out.append(Notice(f"fault: {ev.source}: {ev.message}"))

    def _on_LampTest(self, ev: LampTest, now, out):
        self.lamp_test = _LampTestRun(list(self.board.lamps), now, ev.step_s)

    def _on_CardChanged(self, ev: CardChanged, now, out):
        out.append(ShowCard(ev.position, ev.line, ev.card))   # for the view and followers

    def _on_KeyTest(self, ev: KeyTest, now, out):
        self.key_test = ev.on

    def _clear(self, number):
        ln = self.lines[number]
        messages = ln.messages
        self.lines[number] = _Line(messages=messages)

    def _line_changed(self, number) -> LineChanged:
        ln = self.lines[number]
        return LineChanged(number, ln.state, ln.position, ln.rings)

    # -- lamps ---------------------------------------------------------
    # -- scheduled calls -----------------------------------------------
    def _due_line(self, d: ScheduledCallDue) -> str | None:
        if d.line is not None and d.line in self.lines:
            return d.line
        return next((ln.number for ln in self.board.lines if ln.kind == "office"), None)

    def _on_ScheduledCallDue(self, ev: ScheduledCallDue, now, out):
        if ev.mode == "auto":
            out.append(PlaceCall(ev.number, ev.message, ev.kind, ev.schedule_id, ev.occurrence,
                                 ev.customer, ev.line, ev.attempt, ev.ring_s))
            return
        self.due_calls[ev.occurrence] = ev
        what = "wake-up call" if ev.kind == "wakeup" else "reminder call"
        line = self._due_line(ev)
        out.append(Notice(f"{what} for {ev.customer}: call {ev.number}"
                          + (f" on line {line}" if line else "") + f" and say: {ev.message}"
                          + (f" ({ev.note})" if ev.note else "")))

    def _on_ScheduledCallCleared(self, ev: ScheduledCallCleared, now, out):
        d = self.due_calls.pop(ev.occurrence, None)
        if d is not None:
            what = "wake-up call" if d.kind == "wakeup" else "reminder call"
            out.append(Notice(f"{what} for {d.customer} to {d.number}: dealt with"))

    def _on_PlacedCallEnded(self, ev: PlacedCallEnded, now, out):
        out.append(PlacedCallOutcome(ev.occurrence, ev.call, ev.outcome, ev.reason))
        if ev.reason:
            out.append(Notice(f"scheduled call {ev.occurrence}: {ev.outcome}: {ev.reason}"))

    def _wanted(self) -> dict[str, Cadence]:
        want = {}
        for spec in self.board.lines:
            ln = self.lines[spec.number]
            s = ln.state
            if s is LineState.RINGING or (s is LineState.HELD and ln.recalled):
                c = Cadence.FLASH
            elif s is LineState.HELD:
                c = Cadence.WINK
            elif s in (LineState.OPERATOR, LineState.CUSTOMER, LineState.BUSY):
                c = Cadence.STEADY
            else:
                c = Cadence.DARK
            want[spec.lamp] = c
            if spec.message_lamp:
                want[spec.message_lamp] = Cadence.STEADY if ln.messages else Cadence.DARK
        # A scheduled call waiting for an operator winks its idle office line.
        for d in self.due_calls.values():
            line = self._due_line(d)
            if line is not None and self.lines[line].state is LineState.IDLE:
                want[self.board.line(line).lamp] = Cadence.WINK
        want["fault"] = Cadence.STEADY if self.faults else Cadence.DARK
        return want

    def _refresh(self, now) -> list:
        out = []
        for lamp, c in self._wanted().items():
            if self._cadence[lamp] is not c:
                self._cadence[lamp] = c
                out.append(LampCadence(lamp, c))
        levels = interrupter(now)
        test_lamp = None
        if self.lamp_test is not None:
            i = int((now - self.lamp_test.start) // self.lamp_test.step)
            if i >= len(self.lamp_test.order):
                self.lamp_test = None
                out.append(Notice("lamp test done"))
            else:
                test_lamp = self.lamp_test.order[i]
        for lamp, c in self._cadence.items():
            on = (lamp == test_lamp) if self.lamp_test is not None else levels[c]
            if on != self._lit[lamp]:
                self._lit[lamp] = on
                out.append(SetLamp(lamp, on))
        return out
