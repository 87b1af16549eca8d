"""Balancing the board: which lines go to which half when the board is split.

When two operators work the board, each half is served by its own position,
so both halves should carry about the same load, and similar customers (all
the doctors, all the plumbers) should be spread over both, so one operator
does not get every doctor's Monday morning.

The proposal keeps, for every kind of customer, the number of lines in each
half as even as it can be (they differ by at most one), and within that
minimises the difference in load between the halves:

- on small boards, every such assignment is tried (exact);
- on larger ones, lines of each kind are paired by load (largest with the next
  largest), each pair is split across the halves, and which way each pair
  goes is chosen by the largest-differencing (Karmarkar-Karp) method; then
  swaps of two lines of the same kind between the halves are made while any
  swap improves the balance.

Moving a line is a technician's job, so among proposals whose halves differ
by no more than ``tolerance`` (1 % of the total load) the one that moves the
fewest lines wins: on large boards the swaps are also tried starting from the
board as it is. Of an assignment and its mirror image (same balance) the one
that moves fewer lines is proposed. The result is written as a copy of the board file in which
only ``half = `` values change, and loaded back with ``load_board`` to prove
it is valid.
"""

from __future__ import annotations

import difflib
import heapq
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path

from firmware.config.board import load_board
from firmware.errors import ConfigError

#: Try every assignment when there are at most this many.
EXACT_LIMIT = 50_000


@dataclass
class Proposal:
    assignment: dict          # line -> half
    current: dict             # line -> half now
    load: dict                # line -> load
    kinds: dict               # line -> kind
    exact: bool

    def half_loads(self, which: str = "after") -> dict:
        a = self.assignment if which == "after" else self.current
        out = {1: 0.0, 2: 0.0}
        for line, h in a.items():
            out[h] += self.load[line]
        return out

    def imbalance(self, which: str = "after") -> float:
        h = self.half_loads(which)
        return abs(h[1] - h[2])

    @property
    def moves(self) -> list:
        return [(ln, self.current[ln], h) for ln, h in sorted(self.assignment.items())
                if self.current[ln] != h]

    def kind_split(self, which: str = "after") -> dict:
        a = self.assignment if which == "after" else self.current
        out: dict[str, list] = {}
        for line, h in a.items():
            out.setdefault(self.kinds[line], [0, 0])[h - 1] += 1
        return dict(sorted(out.items()))

    def to_json(self) -> dict:
        r = lambda d: {str(k): round(v, 4) for k, v in d.items()}      # noqa: E731
        return {"before": {"load": r(self.half_loads("before")), "imbalance": round(self.imbalance("before"), 4),
                           "kinds": self.kind_split("before")},
                "after": {"load": r(self.half_loads("after")), "imbalance": round(self.imbalance("after"), 4),
                          "kinds": self.kind_split("after")},
                "moves": [{"line": ln, "from": a, "to": b} for ln, a, b in self.moves],
                "exact": self.exact}


def line_loads(board, calls, measure: str = "erlang", hours: tuple | None = None, tz=None) -> dict:
    """Load of each of the board's lines from its call records.

    ``erlang``: operator-seconds on the line (answer to hang-up) over the
    period the records span; ``calls``: calls offered. ``hours`` = (from, to)
    counts only calls offered in those hours of the day (the busy hours, when
    the board is split).
    """
    if measure not in ("erlang", "calls"):
        raise ConfigError("balance", "measure", measure, "\"erlang\" or \"calls\"")
    load = {ln.number: 0.0 for ln in board.lines}
    first = last = None
    for c in calls:
        if c.line not in load:
            continue
        local = c.offered.astimezone(tz) if tz else c.offered
        if hours and not hours[0] <= local.hour < hours[1]:
            continue
        first = c.offered if first is None or c.offered < first else first
        end = c.ended or c.answered or c.offered
        last = end if last is None or end > last else last
        if measure == "calls":
            load[c.line] += 1
        elif c.answered is not None and c.ended is not None:
            load[c.line] += max(0.0, (c.ended - c.answered).total_seconds())
    if measure == "erlang" and first is not None:
        span = max(1.0, (last - first).total_seconds())
        if hours:   # only the chosen hours of each day were counted
            days = max(1, math.ceil(span / 86400))
            span = days * (hours[1] - hours[0]) * 3600
        load = {k: v / span for k, v in load.items()}
    return load


def line_kinds(board, customers=()) -> dict:
    """Kind of each line: its customer's (doctor, plumber...), "office line" for the
    service's own lines, "unassigned" for customer lines nobody has."""
    owner = {}
    for c in sorted(customers, key=lambda c: str(c.get("contract_start"))):
        if c.get("notice_date") is None or c["line"] not in owner:
            owner[c["line"]] = c
    out = {}
    for ln in board.lines:
        if ln.kind == "office":
            out[ln.number] = "office line"
        else:
            out[ln.number] = str(owner[ln.number].get("kind") or "other") if ln.number in owner else "unassigned"
    return out


def _groups(lines, kinds):
    g: dict[str, list] = {}
    for ln in lines:
        g.setdefault(kinds[ln], []).append(ln)
    return g


def _n_assignments(groups) -> int:
    n = 1
    for members in groups.values():
        k = len(members)
        n *= math.comb(k, k // 2) * (2 if k % 2 else 1)
    return n


def _exact(groups, load, current, tolerance):
    """Try every kind-even assignment. Of those within ``tolerance`` of the
    total load (or the best, if none is), the one that moves fewest lines."""
    per_kind = []
    for members in groups.values():
        k = len(members)
        sizes = {k // 2, k - k // 2}
        opts = [frozenset(c) for s in sorted(sizes) for c in itertools.combinations(members, s)]
        per_kind.append([(sum(load[x] for x in o),
                          sum(current[x] != 1 for x in o) + sum(current[x] != 2 for x in members if x not in o),
                          o) for o in opts])
    total = sum(load.values())
    n = sum(len(m) for m in groups.values())
    found = []
    for combo in itertools.product(*per_kind):
        h1 = sum(x[0] for x in combo)
        moved = sum(x[1] for x in combo)
        found.append((abs(2 * h1 - total), min(moved, n - moved), combo))
    best = min(f[0] for f in found)
    limit = max(best, tolerance * total) + 1e-12
    d, _, combo = min((f for f in found if f[0] <= limit), key=lambda f: (f[1], f[0]))
    return set().union(*(x[2] for x in combo))


def _heuristic(groups, load):
    """Pair by load within each kind, split each pair, orient pairs by KK, then swap."""
    items = []                # (difference, first, second): first goes to the heavier side
    for members in groups.values():
        s = sorted(members, key=lambda x: (-load[x], x))
        for i in range(0, len(s), 2):
            pair = s[i:i + 2]
            d = load[pair[0]] - (load[pair[1]] if len(pair) == 2 else 0.0)
            items.append((d, pair))
    # Karmarkar-Karp: repeatedly replace the two largest differences by their
    # difference (putting them on opposite sides), then unwind.
    heap = [(-d, i, [(i, +1)]) for i, (d, _) in enumerate(items)]
    heapq.heapify(heap)
    counter = len(items)
    while len(heap) > 1:
        d1, _, s1 = heapq.heappop(heap)
        d2, _, s2 = heapq.heappop(heap)
        counter += 1
        heapq.heappush(heap, (d1 - d2, counter, s1 + [(i, -sg) for i, sg in s2]))
    half1 = set()
    for i, sg in (heap[0][2] if heap else ()):
        pair = items[i][1]
        if sg > 0:
            half1.add(pair[0])              # the heavier of the pair to half 1
        elif len(pair) == 2:
            half1.add(pair[1])
    return _improve(groups, load, half1)


def _improve(groups, load, half1):
    total = sum(load.values())
    h1 = sum(load[x] for x in half1)
    while True:
        diff = 2 * h1 - total          # > 0: half 1 is heavier
        best = (abs(diff), None)
        for members in groups.values():
            a = [x for x in members if x in half1]
            b = [x for x in members if x not in half1]
            for x in a:
                for y in b:
                    nd = abs(diff - 2 * (load[x] - load[y]))
                    if nd < best[0] - 1e-12:
                        best = (nd, (x, y))
            # a kind with an odd count may move its odd line across
            if len(a) > len(b):
                for x in a:
                    nd = abs(diff - 2 * load[x])
                    if nd < best[0] - 1e-12:
                        best = (nd, (x, None))
            elif len(b) > len(a):
                for y in b:
                    nd = abs(diff + 2 * load[y])
                    if nd < best[0] - 1e-12:
                        best = (nd, (None, y))
        if best[1] is None:
            return half1
        x, y = best[1]
        if x is not None:
            half1.discard(x)
            h1 -= load[x]
        if y is not None:
            half1.add(y)
            h1 += load[y]


def propose(board, load: dict, kinds: dict, exact_limit: int = EXACT_LIMIT,
            tolerance: float = 0.01) -> Proposal:
    """The proposed half of every line of ``board``.

    ``tolerance``: a difference between the halves up to this share of the
    total load counts as balanced, and then the proposal that moves the fewest
    lines is preferred (0: the best balance, however many lines move).
    """
    if board.positions != 2:
        raise ConfigError(board.path, "board.positions", board.positions,
                          "2: only a two-position board is split into halves")
    lines = [ln.number for ln in board.lines]
    for ln in lines:
        if ln not in load:
            raise ConfigError("balance", f"load.{ln}", None, "a load for every line of the board")
    current = {ln.number: ln.half for ln in board.lines}
    groups = _groups(lines, kinds)
    exact = _n_assignments(groups) <= exact_limit
    total = sum(load.values())

    def oriented(half1):
        a = {ln: 1 if ln in half1 else 2 for ln in lines}
        mirror = {ln: 3 - h for ln, h in a.items()}
        return mirror if _moved(mirror, current) < _moved(a, current) else a

    if exact:
        a = oriented(_exact(groups, load, current, tolerance))
    else:
        # From scratch (best balance), and from the board as it is (fewest
        # moves): the latter if it is within the tolerance.
        fresh = oriented(_heuristic(groups, load))
        kept = oriented(_improve(groups, load, _even_out(groups, load, current)))
        limit = max(_imbalance(fresh, load), tolerance * total) + 1e-12
        a = kept if _imbalance(kept, load) <= limit and _moved(kept, current) <= _moved(fresh, current) \
            else fresh
    return Proposal(a, current, dict(load), dict(kinds), exact)


def _moved(a, current) -> int:
    return sum(a[ln] != current[ln] for ln in a)


def _imbalance(a, load) -> float:
    return abs(sum(load[ln] if h == 1 else -load[ln] for ln, h in a.items()))


def _even_out(groups, load, current):
    """Half 1's lines after the fewest moves that make every kind even."""
    half1 = {ln for ln, h in current.items() if h == 1}
    total = sum(load.values())
    for members in groups.values():
        while True:
            a = [x for x in members if x in half1]
            b = [x for x in members if x not in half1]
            if abs(len(a) - len(b)) <= 1:
                break
            h1 = sum(load[x] for x in half1)
            if len(a) > len(b):      # move the one that leaves the halves closest
                x = min(a, key=lambda x: abs(2 * (h1 - load[x]) - total))
                half1.discard(x)
            else:
                x = min(b, key=lambda x: abs(2 * (h1 + load[x]) - total))
                half1.add(x)
    return half1


# -- the board-file change -----------------------------------------------------
_HEADER = re.compile(r"^\s*\[")
_NUMBER = re.compile(r'^\s*number\s*=\s*"([^"]*)"')
_HALF = re.compile(r"^(\s*half\s*=\s*)([0-9]+)(.*)$")


def patch_board_text(text: str, assignment: dict, path="board") -> str:
    """The board file with only the ``half = `` values of the [[lines]] changed."""
    lines = text.splitlines(keepends=True)
    blocks, start = [], None
    for i, ln in enumerate(lines):
        if _HEADER.match(ln):
            if start is not None:
                blocks.append((start, i))
            start = i if ln.strip() == "[[lines]]" else None
    if start is not None:
        blocks.append((start, len(lines)))
    seen = set()
    for a, b in blocks:
        number = half_at = None
        for i in range(a, b):
            m = _NUMBER.match(lines[i])
            if m:
                number = m.group(1)
            if _HALF.match(lines[i]):
                half_at = i
        if number is None or number not in assignment:
            continue
        if half_at is None:
            raise ConfigError(path, f"lines[{number}].half", None, None, message=(
                f"{path}: line {number} has no 'half = ' line to change; add one by hand"))
        m = _HALF.match(lines[half_at])
        eol = "\n" if lines[half_at].endswith("\n") else ""
        lines[half_at] = f"{m.group(1)}{assignment[number]}{m.group(3).rstrip(chr(10))}{eol}"
        seen.add(number)
    missing = set(assignment) - seen
    if missing:
        raise ConfigError(path, "lines", sorted(missing)[0], "a [[lines]] table for every line")
    return "".join(lines)


def write_patched_board(board_path, proposal: Proposal, out_path) -> tuple[str, object]:
    """Write the patched copy, load it back, check nothing but the halves
    changed; returns (unified diff, loaded board)."""
    src = Path(board_path)
    text = src.read_text(encoding="utf-8")
    new = patch_board_text(text, proposal.assignment, str(src))
    out = Path(out_path)
    out.write_text(new, encoding="utf-8")
    old_b, new_b = load_board(src), load_board(out)
    for a, b in zip(old_b.lines, new_b.lines):
        if (a.number, a.label, a.kind, a.key, a.lamp, a.message_lamp) != \
                (b.number, b.label, b.kind, b.key, b.lamp, b.message_lamp) or b.half != proposal.assignment[b.number]:
            raise ConfigError(out, f"lines[{a.number}]", None, None,
                              message=f"{out}: line {a.number} did not come out as proposed")
    diff = "".join(difflib.unified_diff(text.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=str(src), tofile=str(out)))
    return diff, new_b
