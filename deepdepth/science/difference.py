"""Does a setting move the depth limit? Two tests between two combinations' trials. Pure numpy.

``paired_test``: where both trained the same seed at the same depth (a sweep derives a trial's
seed from the sweep seed, the depth and the replica, so combinations of one sweep share them),
McNemar's exact test on the pairs whose verdicts differ. It uses only the shared depths, and
nothing else about the fit.

``equal_k50_test``: a likelihood-ratio test of one common 50% depth against two, each
combination keeping its own slope (the model of ``confidence.half_trainable_depth``); all
trials count, paired or not. Its p-value is the chi-square (1 df) tail of the deviance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .confidence import maximise, profile_loglik

Trials = list[tuple[int, Optional[int], bool]]  # (depth, seed, trained) per trial with a verdict


@dataclass(frozen=True)
class Paired:
    """Trials of the same seed at the same depth under both settings: how many, how many
    trained under ``a`` only and under ``b`` only, and McNemar's exact two-sided p."""
    pairs: int
    a_only: int
    b_only: int
    p: float

    def __str__(self) -> str:
        if not self.pairs:
            return "no shared seeds"
        return f"{self.pairs} pairs, {self.a_only} vs {self.b_only} trained by one only, p = {fmt_p(self.p)}"


def paired_test(a: Trials, b: Trials) -> Paired:
    """McNemar's exact test over the (depth, seed) pairs both trained (seeds None are unpaired)."""
    mine = {(k, s): y for k, s, y in a if s is not None}
    pairs = [(mine[k, s], y) for k, s, y in b if s is not None and (k, s) in mine]
    a_only = sum(x and not y for x, y in pairs)
    b_only = sum(y and not x for x, y in pairs)
    return Paired(len(pairs), a_only, b_only, sign_test(a_only, b_only))


def sign_test(x: int, y: int) -> float:
    """Two-sided exact binomial test of x successes in x + y at one half."""
    n = x + y
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(x, y) + 1)) / 2.0 ** n
    return min(1.0, 2 * tail)


def equal_k50_test(a: Trials, b: Trials) -> float:
    """p of the likelihood-ratio test that both sets of trials share one 50% depth (1.0 where
    either has no trial)."""
    if not a or not b:
        return 1.0
    data = [_counts(t) for t in (a, b)]
    ks = np.concatenate([d[0] for d in data])
    log_c = np.linspace(ks.min() - 1.5, ks.max() + 1.5, 600)
    apart = sum(maximise(lambda c, d=d: profile_loglik(*d, c), log_c)[0] for d in data)
    common = maximise(lambda c: sum(profile_loglik(*d, c) for d in data), log_c)[0]
    deviance = max(0.0, 2 * (apart - common))
    return math.erfc(math.sqrt(deviance / 2))


def _counts(trials: Trials) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = np.array([t[0] for t in trials], float)
    y = np.array([t[2] for t in trials], float)
    uniq, where = np.unique(k, return_inverse=True)
    return np.log(uniq), np.bincount(where, weights=y), np.bincount(where).astype(float)


def fmt_p(p: float) -> str:
    """'0.031', '0.0004', '< 1e-6'."""
    return "< 1e-6" if p < 1e-6 else f"{p:.2g}" if p < 0.01 else f"{p:.2f}"
