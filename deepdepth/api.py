"""Notebook helpers: compose the package's Hydra config without a command line and run a trial.

``run_trial(model="resnet", k=12, epochs=1)`` trains as ``python -m deepdepth.train model=resnet
k=12 trainer.max_epochs=1`` does, in this process: the same config, the same result.json in the
same run folder (``outputs/<date>/<time>_<model>_k<k>/`` under the working directory, or
``output_dir``), and the epoch lines printed as it trains (``verbose``).

Field names mean one thing across the API, the report and its DataFrames: ``test_err`` and
``train_err`` are a trial's final-epoch errors (``SeedResult``, ``deepdepth.report.Trial``,
``read_sweep``), ``test_err_per_epoch`` / ``train_err_per_epoch`` the lists. The one exception
is result.json itself, a committed format: its ``train_err``/``test_err`` hold the per-epoch
lists, and ``TrialResult[key]`` reads that record verbatim.
"""
from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from .models import conf_dir

CONF_DIR = conf_dir()  # the checkout's conf/ or the wheel's deepdepth.conf

# Friendly keyword -> the config key it sets (any other keyword is a top-level key: k, seed, ...;
# a config group such as model, trainer or logger takes the file's name).
KEYWORDS = {
    "epochs": "trainer.max_epochs", "lr": "optim.lr", "momentum": "optim.momentum",
    "batch_size": "data.batch_size", "train_samples": "data.train_samples",
    "test_samples": "data.test_samples", "data_root": "data.root", "root": "data.root",
    "check_md5": "data.check_md5", "download": "data.download",
    "init": "model.init", "threshold": "trainability.threshold", "criterion": "trainability.criterion",
    "accelerator": "trainer.accelerator",
}
_PLAIN = re.compile(r"^[A-Za-z0-9_.+\-/]+$")


def compose_config(*overrides: str, **settings: Any) -> DictConfig:
    """The config ``python -m deepdepth.train <overrides>`` would run: ``compose_config("model=resnet",
    "k=12")`` or ``compose_config(model="resnet", k=12, epochs=1)`` (keywords as ``run_trial``)."""
    return _compose(list(overrides) + keyword_overrides(**settings))[0]


def keyword_overrides(**settings: Any) -> list[str]:
    """Keyword arguments as override strings: ``keyword_overrides(model="resnet", epochs=1, lr=0.03)``
    -> ``["model=resnet", "trainer.max_epochs=1", "optim.lr=0.03"]``. A dotted key passes as it is
    (``**{"optim.momentum": 0.5}``); ``KEYWORDS`` lists the friendly names."""
    return [f"{KEYWORDS.get(key, key)}={_override_value(value)}" for key, value in settings.items()]


def _override_value(value: Any) -> str:
    """A Python value in Hydra's override grammar: None -> null, True -> true, lists in brackets,
    strings quoted unless plain (``fan_in:0.7`` -> ``'fan_in:0.7'``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _compose(overrides: list[str]) -> tuple[DictConfig, str]:
    """The trial's config and the run folder the CLI would use (``hydra.run.dir``, resolved now)."""
    from hydra.errors import HydraException

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
        except HydraException as exc:  # an unknown key or a bad value: one line, the friendly names too
            raise ValueError(f"{str(exc).splitlines()[0]} (overrides {overrides}; keywords beside the config's "
                             f"own keys: {', '.join(sorted(KEYWORDS))})") from None
    run_dir = str(cfg.hydra.run.dir)  # ${now:...} and ${model.name}, ${k} resolved as the CLI does
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, run_dir


@dataclass(frozen=True)
class SeedResult:
    """One seed's trial, named as the report names it: ``test_err``/``train_err`` are the final
    epoch's errors (as ``deepdepth.report.Trial``), the ``*_per_epoch`` lists every epoch's."""
    seed: int
    k: int
    trainable: Optional[bool]
    diverged: bool
    test_err: Optional[float]
    train_err: Optional[float]
    test_err_per_epoch: list
    train_err_per_epoch: list
    init: Optional[str] = None


class TrialResult(Mapping):
    """What ``run_trial`` returns: the trial's record and where it was written.

    ``run_dir``: the run folder (result.json, metrics.csv, hparams.yaml); ``path``: its
    result.json; ``seed_results``: one ``SeedResult`` per seed (final errors under ``test_err``,
    per-epoch lists under ``test_err_per_epoch``). Indexing reads result.json's record verbatim
    (``result["seconds"]``, ``result["trials"]``), whose ``train_err``/``test_err`` are per-epoch
    lists: that committed format is kept as it is.

    >>> r = run_trial(model="cnn_tanh", k=6, epochs=1, train_samples=2048)   # doctest: +SKIP
    >>> r.seed_results[0].test_err, r.run_dir                               # doctest: +SKIP
    """

    def __init__(self, record: dict, run_dir: Path):
        self.record, self.run_dir = record, Path(run_dir)

    @property
    def path(self) -> Path:
        """The trial's result.json."""
        return self.run_dir / "result.json"

    @property
    def seed_results(self) -> list[SeedResult]:
        """One per seed (packed replica), in the order of ``record["trials"]``."""
        out = []
        for t in self.record.get("trials", []):
            tests, trains = list(t.get("test_err") or []), list(t.get("train_err") or [])
            out.append(SeedResult(seed=t["seed"], k=t["k"], trainable=t.get("trainable"),
                                  diverged=bool(t.get("diverged")), test_err=tests[-1] if tests else None,
                                  train_err=trains[-1] if trains else None, test_err_per_epoch=tests,
                                  train_err_per_epoch=trains, init=t.get("init")))
        return out

    @property
    def trainable(self) -> list[Optional[bool]]:
        """Each seed's verdict (None: no verdict, e.g. a debug run)."""
        return [s.trainable for s in self.seed_results]

    def __getitem__(self, key: str) -> Any:
        return self.record[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.record)

    def __len__(self) -> int:
        return len(self.record)

    def __repr__(self) -> str:
        verdicts = ", ".join(f"seed {s.seed}: trainable={s.trainable}, test_err={s.test_err}"
                             for s in self.seed_results)
        return f"TrialResult({self.record.get('model')} k={self.record.get('k')}: {verdicts}; run_dir={str(self.run_dir)!r})"


def run_trial(*overrides: str, output_dir: str | Path | None = None, verbose: bool = True,
              **settings: Any) -> TrialResult:
    """Train one trial in this process, write its result.json as the CLI does, and return it.

    Override strings, keywords or both: ``run_trial("model=resnet", "k=12")``,
    ``run_trial(model="resnet", k=12, epochs=1, lr=0.03, train_samples=2048)``. Keywords
    ``epochs``, ``lr``, ``momentum``, ``batch_size``, ``train_samples``, ``test_samples``,
    ``data_root``, ``check_md5``, ``download``, ``init``, ``threshold``, ``criterion``, ``accelerator`` map to their config
    keys (``KEYWORDS``); any other (``k``, ``seed``, ``replicas``, ``protocol``, ``model``,
    ``trainer``, ``logger``, ...) is the config key of that name. ``output_dir``: the run folder
    (default: the CLI's ``outputs/<date>/<time>_<model>_k<k>/`` under the working directory).
    ``verbose``: print the epoch lines and the verdict while it trains. A bad value is refused
    before any training, in one line naming it.
    """
    from .files import atomic_write
    from .train import summary_line, train  # Lightning is imported only when a trial runs

    cfg, default_dir = _compose(list(overrides) + keyword_overrides(**settings))
    run_dir = Path(output_dir) if output_dir is not None else _fresh(Path(default_dir))
    with _epoch_lines(verbose) as log:
        record = train(cfg, run_dir, interactive=False)  # checks the config first: a bad value creates nothing
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "result.json", json.dumps(record, indent=2) + "\n")
        log.info("%s -> %s", summary_line(cfg, record), run_dir / "result.json")
    return TrialResult(record, run_dir)


def _fresh(path: Path) -> Path:
    """``path``, or ``path_2``, ``path_3``, ... when a trial of the same second already wrote there."""
    candidate, n = path, 1
    while (candidate / "result.json").exists():
        n += 1
        candidate = path.with_name(f"{path.name}_{n}")
    return candidate


@contextlib.contextmanager
def _epoch_lines(verbose: bool):
    """The package's logger at INFO while a trial runs, printing to stdout unless logging is
    already configured (then its own handlers print, once); silent below WARNING when not verbose."""
    log = logging.getLogger("deepdepth")
    level = log.level
    handler = None
    if verbose and not log.hasHandlers():
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO if verbose else max(level, logging.WARNING))
    try:
        yield log
    finally:
        log.setLevel(level)
        if handler is not None:
            log.removeHandler(handler)
