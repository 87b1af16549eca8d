"""The supervisor's figures as PNGs (matplotlib, Agg backend: no display needed).

Office-side only: matplotlib is the ``office`` extra, not installed on the Pi.
The numbers come from ``firmware.records.figures.compute``.
"""

from __future__ import annotations

from firmware.records.figures import WAIT_BINS

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_calls_per_hour(fig_data: dict, path, title: str = "") -> None:
    """Calls per hour of the day (average day): answered and abandoned stacked,
    with the 90th-percentile time to answer on the right-hand axis."""
    plt = _pyplot()
    days = max(1, fig_data["period"]["days"])
    hours = list(range(24))
    rows = [fig_data["by_hour"][f"{h:02d}"] for h in hours]
    answered = [r["answered"] / days for r in rows]
    abandoned = [r["abandoned"] / days for r in rows]
    other = [(r["offered"] - r["answered"] - r["abandoned"]) / days for r in rows]
    p90 = [r["wait_p90_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=100)
    ax.bar(hours, answered, color="#3a7d44", label="answered")
    ax.bar(hours, abandoned, bottom=answered, color="#d1495b", label="abandoned")
    ax.bar(hours, other, bottom=[a + b for a, b in zip(answered, abandoned)], color="#bbbbbb",
           label="overflowed / not answered")
    ax.set_xticks(hours)
    ax.set_xticklabels([f"{h:02d}" for h in hours])
    ax.set_xlim(-0.6, 23.6)
    ax.set_xlabel("hour of the day")
    ax.set_ylabel(f"calls per hour (average of {days} day{'s' if days != 1 else ''})")
    ax.grid(axis="y", alpha=0.3)
    ax2 = ax.twinx()
    xs = [h for h in hours if p90[h] is not None]
    ax2.plot(xs, [p90[h] for h in xs], color="#1f4e79", marker="o", ms=3, lw=1.5,
             label="90 % answered within (s)")
    ax2.set_ylabel("90 % of calls answered within (s)", color="#1f4e79")
    ax2.set_ylim(0, max([v for v in p90 if v is not None] + [10]) * 1.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8, frameon=False)
    t = fig_data["totals"]
    ax.set_title(title or f"Calls per hour: {t['offered']} offered, {t['answered']} answered, "
                 f"{t['abandoned']} abandoned")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_wait_distribution(fig_data: dict, path, title: str = "") -> None:
    """How long callers waited: answered calls by time to answer, and how long
    abandoned calls rang, in the same bins; mean and 90th percentile marked."""
    plt = _pyplot()
    h = fig_data["wait_histogram"]
    edges = [0] + list(WAIT_BINS)
    labels = [f"{a}-{b}" for a, b in zip(edges, edges[1:])] + [f"{WAIT_BINS[-1]}+"]
    xs = list(range(len(labels)))
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=100)
    w = 0.4
    ax.bar([x - w / 2 for x in xs], h["answered"], width=w, color="#3a7d44", label="answered after")
    ax.bar([x + w / 2 for x in xs], h["abandoned"], width=w, color="#d1495b", label="caller gave up after")
    ax.set_xticks(xs)
    ax.set_xticklabels(labels)
    ax.set_xlabel("seconds from the first ring")
    ax.set_ylabel("calls")
    ax.grid(axis="y", alpha=0.3)
    t = fig_data["totals"]

    def where(sec):                       # position of a time on the binned axis
        for i, edge in enumerate(WAIT_BINS):
            lo = edges[i]
            if sec < edge:
                return i - 0.5 + (sec - lo) / (edge - lo)
        return len(WAIT_BINS) - 0.5 + 0.5
    for key, style, name in (("wait_mean_s", "--", "average"), ("wait_p90_s", ":", "90 %")):
        if t[key] is not None:
            ax.axvline(where(t[key]), color="#1f4e79", ls=style, lw=1.5, label=f"{name}: {t[key]:.0f} s")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title or "Time to answer")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_lines(fig_data: dict, path, top: int = 30, title: str = "") -> None:
    """The busiest lines: calls offered, split answered / abandoned."""
    plt = _pyplot()
    rows = sorted(fig_data["by_line"].items(), key=lambda kv: -kv[1]["offered"])[:top]
    rows = [(k, v) for k, v in rows if v["offered"]]
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=100)
    xs = list(range(len(rows)))
    ans = [v["answered"] for _, v in rows]
    ab = [v["abandoned"] for _, v in rows]
    ax.bar(xs, ans, color="#3a7d44", label="answered")
    ax.bar(xs, ab, bottom=ans, color="#d1495b", label="abandoned")
    ax.set_xticks(xs)
    ax.set_xticklabels([k for k, _ in rows], rotation=90, fontsize=8)
    ax.set_xlabel("line")
    ax.set_ylabel("calls offered")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title or f"The {len(rows)} busiest lines")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


# -- the board's view ------------------------------------------------------------
