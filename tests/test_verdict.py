"""Trainability verdicts and the study's log line."""
import math

import pytest

from deepdepth.trial.verdict import epoch_line, is_trainable


@pytest.mark.parametrize("criterion, train, test, expected", [
    ("test", 0.5, 0.1, True), ("test", 0.1, 0.5, False),
    ("train", 0.1, 0.5, True), ("train", 0.5, 0.1, False),
    ("either", 0.1, 0.5, True), ("either", 0.5, 0.5, False),
    ("both", 0.1, 0.1, True), ("both", 0.1, 0.5, False),
])
def test_criteria(criterion, train, test, expected):
    assert is_trainable(train, test, 0.2, criterion) is expected


def test_threshold_is_strict_and_configurable():
    assert not is_trainable(0.0, 0.20)
    assert is_trainable(0.0, 0.25, threshold=0.3)


def test_diverged_or_missing_is_not_trainable():
    assert not is_trainable(0.01, 0.01, diverged=True)
    assert not is_trainable(None, None) and not is_trainable(0.0, math.nan)


def test_unknown_criterion():
    with pytest.raises(ValueError, match="unknown trainability.criterion 'mean'"):
        is_trainable(0.1, 0.1, criterion="mean")


def test_epoch_line_matches_the_original_study():
    assert epoch_line(0, 3, 0.4669, 0.1880) == "Epoch 000/003, Train Error 46.69% || Test Error 18.80%"
