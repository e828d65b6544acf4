"""The limit against a key the sweep varies (lr, init, widths, protocol, ...): for each group of
combinations that differ in that key only, every value's measured limit, its rank across the
key, and between neighbouring values two tests of whether the key moved the limit (a paired
test over trials of the same seed at the same depth, and a likelihood-ratio test of one common
k50). A BatchNorm-free variant's two protocols are one set of trials: no comparison. Pure."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from ..science.difference import Paired, equal_k50_test, fmt_p, paired_test
from .load import Trial
from .markdown import table
from .settings import NEUTRAL, show, varying
from .stats import INTERVAL, Confidence, rank_variants, same_trials


@dataclass(frozen=True)
class Step:
    """From one value of the key to the next: both tests."""
    paired: Paired
    p_k50: float


@dataclass
class KeySweep:
    key: str                # the swept key, as the report's columns name it
    group: str              # what the rows share: the variant and the other varying settings
    rows: list[Confidence]  # ordered by the key's value
    ranks: list[int]        # across the key, deepest first
    steps: list[Step]       # steps[i]: rows[i] -> rows[i + 1]

    def value(self, r: Confidence) -> str:
        return show(r.combination.settings.get(self.key))


def swept_keys(conf: list[Confidence]) -> list[str]:
    """The settings that vary between combinations and change what is trained."""
    return [k for k in varying([r.combination.settings for r in conf]) if k not in NEUTRAL]


def key_sweeps(conf: list[Confidence], trials: Optional[list[Trial]] = None) -> list[KeySweep]:
    """Every (key, group) with at least two values of the key on distinct trials, in key order;
    the tests between values where ``trials`` are given (a figure needs none)."""
    keys = swept_keys(conf)
    by_combo: dict[int, list] = {}
    for t in trials or []:
        if t.counted:
            by_combo.setdefault(t.combo, []).append((t.k, t.seed, bool(t.trainable)))
    out = []
    for key in keys:
        groups: dict[tuple, list[Confidence]] = {}
        for r in conf:
            rest = tuple(show(r.combination.settings.get(k)) for k in keys if k != key)
            groups.setdefault((r.variant, *rest), []).append(r)
        for shared, rows in groups.items():
            rows = _distinct_values(rows, key)
            if len(rows) < 2:
                continue
            ranked = {id(x.row): x.rank for x in rank_variants(rows, group_keys=[])}
            steps = [] if trials is None else [_step(by_combo, a, b) for a, b in zip(rows, rows[1:])]
            group = " ".join([shared[0]] + [f"{k}={v}" for k, v in zip([k for k in keys if k != key], shared[1:])])
            out.append(KeySweep(key, group, rows, [ranked[id(r)] for r in rows], steps))
    return out


def _step(by_combo: dict, a: Confidence, b: Confidence) -> Step:
    mine, theirs = by_combo.get(a.combination.combo, []), by_combo.get(b.combination.combo, [])
    return Step(paired_test(mine, theirs), equal_k50_test(mine, theirs))


def _distinct_values(rows: list[Confidence], key: str) -> list[Confidence]:
    """One row per value of ``key`` with trials of its own (with trials), sorted by the value."""
    seen, out = set(), []
    for r in sorted(rows, key=lambda r: order(r.combination.settings.get(key))):
        trials = same_trials(r)[1:]
        if r.depths and trials not in seen:
            seen.add(trials)
            out.append(r)
    return out


def order(x: Any) -> tuple:
    """Sort key of a setting's value: numbers by size, 'fan_in:0.7' by its number, '[2, 4, 8]'
    element-wise, other text alphabetically ('correct' before 'original')."""
    if isinstance(x, bool) or x is None:
        return (2, str(x))
    if isinstance(x, (int, float)):
        return (0, (float(x),))
    text = str(x)
    if text.startswith("["):
        try:
            return (0, tuple(float(v) for v in json.loads(text)))
        except (ValueError, TypeError):
            pass
    numbers = re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)
    return (1, re.sub(r"[-\d.]+$", "", text), tuple(float(n) for n in numbers))


def sweeps_markdown(sweeps: list[KeySweep]) -> list[str]:
    """One '## Limit against <key>' section per key: a table of its groups' values."""
    parts = []
    for key in dict.fromkeys(s.key for s in sweeps):
        rows = []
        for s in (s for s in sweeps if s.key == key):
            for i, r in enumerate(s.rows):
                step = s.steps[i - 1] if i and s.steps else None
                rows.append([s.group, s.value(r), str(r.limit), str(r.trials), f"{s.ranks[i]} of {len(s.rows)}",
                             str(step.paired) if step else "", fmt_p(step.p_k50) if step else ""])
        parts += ["", f"## Limit against {key}", "",
                  f"Combinations that differ only in {key}: the measured limit (k50 [{INTERVAL}]) for each value, "
                  f"ranked across {key} (deepest first; a bound ranks by its bound). Against the value above it: "
                  "the paired test counts the trials of the same seed at the same depth that trained under one value "
                  "only (McNemar's exact test), and the likelihood-ratio test asks whether one k50 fits both "
                  "(each keeping its own slope; all trials). A small p says the key moved the limit; a large one "
                  "that these trials cannot tell.", "",
                  table(["combinations", key, f"k50 [{INTERVAL}]", "trials", f"rank across {key}",
                         "against the value above: paired", "p (one common k50)"], rows)]
    return parts
