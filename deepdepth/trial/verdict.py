"""Trainability verdicts (final error below a threshold), free of Lightning so reports and searches reuse them."""
from __future__ import annotations

import math

CRITERIA = ("test", "train", "either", "both")


def check_criterion(criterion: str) -> str:
    """``criterion`` itself when it is one of ``CRITERIA``, else ValueError naming the choices."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown trainability.criterion {criterion!r}; choose one of {CRITERIA}")
    return criterion


def is_trainable(train_err: float | None, test_err: float | None, threshold: float = 0.20,
                 criterion: str = "test", diverged: bool = False) -> bool:
    """Final-epoch error below ``threshold`` on the test set, the training set, either or both."""
    check_criterion(criterion)
    if diverged:
        return False
    ok = {name: err is not None and math.isfinite(err) and err < threshold
          for name, err in (("train", train_err), ("test", test_err))}
    if criterion == "either":
        return ok["train"] or ok["test"]
    if criterion == "both":
        return ok["train"] and ok["test"]
    return ok[criterion]


def epoch_line(epoch: int, epochs: int, train_err: float, test_err: float) -> str:
    """The original study's per-epoch log line."""
    return f"Epoch {epoch:03d}/{epochs:03d}, Train Error {100 * train_err:.2f}% || Test Error {100 * test_err:.2f}%"
