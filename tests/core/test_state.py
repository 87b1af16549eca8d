"""The board's state as a table of cases: events in, commands out, clock passed in."""

import pytest

from firmware.config.board import find_board, load_board
from firmware.core.state import (Answer, BoardState, BusyOut, CallerIdentified, Cadence,
                            CustomerAnswered,
                            CustomerHungUp, Dial, Fault, Hold, HoldRecall, Join, KeyChanged,
                            KeyReport, KeyTest, LampTest, LineCleared, LineRinging,
                            MessageWaiting, Release, Resume, Seize, SetLamp, StampRequest,
                            interrupter, next_edge)

DESK = load_board(find_board("desk"))
TAS = load_board(find_board("tas100"))


class Run:
    """Drive a BoardState with a fake-free clock: times are just numbers we pass in."""

    def __init__(self, board=DESK, keys_down=(), t=100.0):
        self.t = t
        self.s = BoardState(board, t, keys_down=keys_down)
        self.out = self.s.start(t)

    def at(self, dt):
        self.t += dt
        self.out = self.s.tick(self.t)
        return self

    def ev(self, event, dt=0.1):
        self.t += dt
        self.out = self.s.handle(event, self.t)
        return self

    def press(self, key, hold=0.05):
        """A clean key press: down, held, up, with the debounce time respected."""
        self.ev(KeyChanged(key, True))
        out = self.out
        self.ev(KeyChanged(key, False), dt=max(hold, 0.03))
        self.out = out + self.out
        return self

    def line(self, n):
        return self.s.lines[n]

    def cadence(self, lamp):
        return self.s._cadence[lamp]

    def has(self, cmd):
        return cmd in self.out


# -- line keys ---------------------------------------------------------------
def test_ok__ringing_line_flashes_and_counts_rings():
    r = Run().ev(LineRinging("201", "5551234"))
    assert r.line("201").state.value == "ringing" and r.line("201").rings == 1
    assert r.cadence("line-201") is Cadence.FLASH
    r.at(DESK.ring_seconds * 2 + 0.1)
    assert r.line("201").rings == 3


def test_ok__caller_id_after_the_first_ring_names_the_call_it_belongs_to():
    r = Run().ev(LineRinging("901", None, "c1"))       # an analog line: the lamp flashes first
    assert r.cadence("line-901") is Cadence.FLASH and r.line("901").caller is None
    r.ev(CallerIdentified("901", "5551234", "c1"))
    assert r.line("901").caller == "5551234"
    assert any(getattr(c, "line", None) == "901" for c in r.out)   # LineChanged: card again
    r.ev(CallerIdentified("901", "5559999", "c0"))       # a late one for an earlier call
    assert r.line("901").caller == "5551234"
    r.press("line-901")                                  # answered: still the same caller
    assert r.line("901").caller == "5551234"
    r.ev(LineCleared("901"))
    r.ev(CallerIdentified("901", "5551234", "c1"))       # after the call: nothing rings
    assert r.line("901").state.value == "idle" and r.line("901").caller is None


def test_ok__pick_up_answers_on_the_serving_position():
    r = Run().ev(LineRinging("202")).press("line-202")
    assert r.has(Answer("202", 1)) and r.line("202").state.value == "operator"
    assert r.cadence("line-202") is Cadence.STEADY


def test_ok__split_sends_each_half_to_its_position():
    r = Run().press("split").ev(KeyChanged("split", True))   # a latching key left down
    r.ev(LineRinging("202")).press("line-202")
    assert r.has(Answer("202", 2))
    r.ev(LineRinging("201")).press("line-201")
    assert r.has(Answer("201", 1))
    assert r.s.positions[1].line == "201" and r.s.positions[2].line == "202"


def test_fail__position_two_keys_do_nothing_unless_split():
    r = Run().press("p2-hold")
    assert any("not in service" in getattr(c, "text", "") for c in r.out)


def test_ok__hold_winks_and_pick_up_resumes():
    r = Run().ev(LineRinging("201")).press("line-201").press("p1-hold")
    assert r.has(Hold("201", 1)) and r.cadence("line-201") is Cadence.WINK
    r.press("line-201")
    assert r.has(Resume("201", 1)) and r.cadence("line-201") is Cadence.STEADY


def test_ok__held_call_recalls_the_operator():
    r = Run().ev(LineRinging("201")).press("line-201").press("p1-hold")
    r.at(DESK.hold_recall_s + 1)
    assert any(isinstance(c, HoldRecall) and c.line == "201" for c in r.out)
    assert r.cadence("line-201") is Cadence.FLASH


def test_ok__picking_up_another_line_holds_the_first():
    r = Run().ev(LineRinging("201")).press("line-201").ev(LineRinging("203")).press("line-203")
    assert r.has(Hold("201", 1)) and r.has(Answer("203", 1))
    assert r.line("201").state.value == "held"


def test_ok__release_ends_the_call_and_darkens_the_lamp():
    r = Run().ev(LineRinging("201")).press("line-201").press("p1-release")
    assert r.has(Release("201", 1, ends_call=True))
    assert r.line("201").state.value == "idle" and r.cadence("line-201") is Cadence.DARK


def test_ok__idle_office_line_is_seized_and_dialled():
    r = Run().press("line-901").press("p1-dial-5").press("p1-dial-hash")
    assert r.line("901").state.value == "operator"
    assert r.s.positions[1].digits == "5#"
    assert Dial(1, "#", "901") in r.out


def test_ok__stamp_key_names_the_line_in_use():
    r = Run().ev(LineRinging("204")).press("line-204").press("p1-stamp")
    assert r.has(StampRequest(1, "204"))


def test_ok__caller_hangs_up():
    r = Run().ev(LineRinging("201")).press("line-201").ev(LineCleared("201"))
    assert r.line("201").state.value == "idle" and r.s.positions[1].line is None


# -- secrecy -------------------------------------------------------------------
def test_ok__secrecy_keeps_the_operator_off_a_line_the_customer_answered():
    r = Run(keys_down=("secrecy",)).ev(LineRinging("201")).ev(CustomerAnswered("201"))
    assert r.line("201").state.value == "customer" and r.cadence("line-201") is Cadence.STEADY
    r.press("line-201")
    assert not any(isinstance(c, (Answer, Join)) for c in r.out)
    assert r.s.positions[1].line is None


def test_ok__secrecy_off_lets_the_operator_join_and_says_so():
    r = Run().ev(LineRinging("201")).ev(CustomerAnswered("201")).press("line-201")
    assert r.has(Join("201", 1))
    assert any("joined line 201" in getattr(c, "text", "") for c in r.out)


def test_ok__customer_joins_after_operator_and_operator_drops_off():
    r = Run(keys_down=("secrecy",)).ev(LineRinging("201")).press("line-201")
    r.ev(CustomerAnswered("201")).press("p1-release")
    assert r.has(Release("201", 1, ends_call=False))
    assert r.line("201").state.value == "customer"
    r.ev(CustomerHungUp("201"))
    assert r.line("201").state.value == "idle"


# -- busy, messages, faults ------------------------------------------------------
def test_fail__busied_out_line_does_not_ring():
    r = Run().ev(BusyOut("203", True)).ev(LineRinging("203"))
    assert r.line("203").state.value == "busy"
    r.press("line-203")
    assert not any(isinstance(c, (Answer, Seize)) for c in r.out)


def test_ok__message_waiting_lights_the_message_lamp():
    r = Run().ev(MessageWaiting("202", 2))
    assert r.cadence("msg-202") is Cadence.STEADY
    r.ev(MessageWaiting("202", 0))
    assert r.cadence("msg-202") is Cadence.DARK


def test_ok__fault_lamp_lights_while_any_fault_stands():
    r = Run().ev(Fault("printer", "out of paper")).ev(Fault("trunk a", "lost"))
    assert r.cadence("fault") is Cadence.STEADY
    r.ev(Fault("printer", None))
    assert r.cadence("fault") is Cadence.STEADY
    r.ev(Fault("trunk a", None))
    assert r.cadence("fault") is Cadence.DARK


# -- keys: debounce, stuck keys, key test -------------------------------------
def test_ok__bounces_within_the_debounce_time_are_one_press():
    r = Run().ev(LineRinging("201"))
    answers = 0
    for down in [True, False, True, False, True]:
        r.ev(KeyChanged("line-201", down), dt=0.002)
        answers += sum(isinstance(c, Answer) for c in r.out)
    r.at(0.05)
    assert answers == 1 and r.s.keys["line-201"].level is True


def test_ok__release_during_the_lockout_is_settled_by_the_tick():
    r = Run()
    r.ev(KeyChanged("p1-hold", True), dt=0.0).ev(KeyChanged("p1-hold", False), dt=0.005)
    assert r.s.keys["p1-hold"].level is True
    r.at(DESK.debounce_ms / 1000)
    assert r.s.keys["p1-hold"].level is False


def test_fail__key_down_at_start_up_is_stuck_and_ignored_until_released():
    r = Run(keys_down=("line-201",))
    assert KeyReport("line-201", True, "stuck: down at start-up, ignored until released") in r.out
    r.ev(LineRinging("201")).ev(KeyChanged("line-201", True))
    assert r.line("201").state.value == "ringing"
    r.ev(KeyChanged("line-201", False))
    assert r.s.snapshot(r.t)["stuck"] == []
    r.press("line-201")
    assert r.line("201").state.value == "operator"


def test_ok__switch_on_at_start_up_is_on_not_stuck():
    r = Run(keys_down=("split",))
    assert r.s.switches["split"] and not r.s.keys["split"].stuck


def test_ok__key_test_reports_keys_and_they_do_nothing():
    r = Run().ev(LineRinging("201")).ev(KeyTest(True)).press("line-201")
    assert KeyReport("line-201", True, "test") in r.out
    assert r.line("201").state.value == "ringing"


# -- lamps and the interrupter ------------------------------------------------------
def test_ok__every_flashing_lamp_is_in_step():
    r = Run(board=TAS)
    for ln in TAS.lines:
        r.ev(LineRinging(ln.number), dt=0.013)   # offered at scattered times
    for _ in range(40):
        r.at(0.037)
        levels = {r.s._lit[ln.lamp] for ln in TAS.lines}
        assert len(levels) == 1
        assert levels == {interrupter(r.t)[Cadence.FLASH]}


def test_ok__lamp_test_walks_every_lamp_once():
    r = Run()
    r.ev(LampTest(0.1))
    lit = []
    for _ in range(len(DESK.lamps) * 2 + 4):
        r.at(0.05)
        on = [n for n, v in r.s._lit.items() if v]
        assert len(on) <= 1
        if on and (not lit or lit[-1] != on[0]):
            lit.append(on[0])
    assert lit == list(DESK.lamps)


def test_ok__set_lamp_only_for_changes():
    r = Run().ev(LineRinging("201"))
    assert SetLamp("line-201", interrupter(r.t)[Cadence.FLASH]) in r.out or \
        not interrupter(r.t)[Cadence.FLASH]
    r.ev(MessageWaiting("201", 0), dt=0.0)     # same instant, nothing changes
    assert not any(isinstance(c, SetLamp) for c in r.out)


@pytest.mark.parametrize("now", [0.0, 0.25, 0.4, 0.45, 0.5, 0.99, 1234.56])
def test_ok__next_edge_is_the_next_change_of_the_interrupter(now):
    edge = next_edge(now)
    assert edge > now
    before, after = interrupter(edge - 1e-6), interrupter(edge + 1e-6)
    assert before != after
    mid = interrupter((now + edge) / 2)
    assert mid == interrupter(now + 1e-9)




def _board_in(case, t=100.0):
    r = Run(TAS, t=t)
    if case in ("ringing", "held"):
        r.ev(LineRinging("201"), dt=0.013).ev(LineRinging("250"), dt=0.3)
    if case == "held":
        r.press("line-201").press("line-250", hold=0.03)   # 201 is put on hold: it winks
        assert r.s._cadence["line-201"] is Cadence.WINK
    if case == "lamp test":
        r.ev(LampTest(0.07), dt=0.013)
    return r


def _seen(r):
    return dict(r.s._lit), [ln.rings for ln in r.s.lines.values()]


# Wakes in 7 s: one a second idle, the interrupter's edges, the rings, the lamp test's
# steps, and a few spare where rounding puts an edge a hair after the wake (1 ms on).
@pytest.mark.parametrize("case,max_wakes", [("idle", 8), ("ringing", 2 * 7 + 2 + 2),
                                            ("held", 4 * 7 + 4), ("lamp test", 2 * 7 / 0.07)])
def test_ok__next_deadline_wakes_the_loop_only_when_something_is_due(case, max_wakes):
    """A loop that ticks only at next_deadline() (at least 1 ms on, as the daemon does)
    shows every lamp level and ring count that one ticking every 5 ms shows, on time."""
    sparse, ref = _board_in(case), _board_in(case)
    start = sparse.t
    wakes = [(sparse.t, _seen(sparse))]
    while sparse.t < start + 7.0:                # one more ring, seven flash cycles
        sparse.at(max(sparse.s.next_deadline(sparse.t) - sparse.t, 0.001))
        wakes.append((sparse.t, _seen(sparse)))
    assert len(wakes) - 1 <= max_wakes
    grid = sorted({start + i * 0.005 for i in range(1, 1400)} | {t for t, _ in wakes[1:]})
    w = 0
    for t in grid:
        ref.at(t - ref.t)
        while w + 1 < len(wakes) and wakes[w + 1][0] <= t:
            w += 1
        assert _seen(ref) == wakes[w][1], f"{case}: at {t - start:.3f} s the sparse loop is late"
    if case == "ringing":
        assert wakes[-1][1][1][0] == 2                # the second ring was counted


def test_ok__call_back_dials_a_whole_number_on_a_seized_office_line():
    from firmware.core.state import DialNumber
    r = Run().press("line-901").ev(DialNumber(1, "5550101"))
    assert [c.digit for c in r.out if isinstance(c, Dial)] == list("5550101#")
    assert all(c.line == "901" for c in r.out if isinstance(c, Dial))


def test_fail__call_back_without_a_seized_line_dials_nothing():
    from firmware.core.state import DialNumber
    r = Run().ev(LineRinging("201")).press("line-201").ev(DialNumber(1, "5550101"))
    assert not any(isinstance(c, Dial) for c in r.out)      # no tones into the caller's ear
    assert any("seize an idle office line" in getattr(c, "text", "") for c in r.out)
