"""Builders for the report's records, so tests state only what they vary."""
import json

from deepdepth.report.load import Combination, Trial
from deepdepth.report.settings import settings_of
from deepdepth.report.stats import confidence_table


def trials(combo: int, counts: dict, err_pass: float = 0.05, err_fail: float = 0.9) -> list[Trial]:
    """Trials of one combination: ``counts`` maps depth -> (trained, seeds)."""
    out = []
    for k, (passes, n) in counts.items():
        out += [Trial(combo, k, seed, trainable=seed < passes, test_err=err_pass if seed < passes else err_fail,
                      train_err=err_pass if seed < passes else err_fail) for seed in range(n)]
    return out


def combination(combo: int, model: str, k_star=None, **params) -> Combination:
    """A combination whose override params are ``params`` (e.g. optim.lr='0.05', protocol='original')."""
    settings, assumed = settings_of({k.replace("__", "."): v for k, v in params.items()})
    return Combination(combo, model, settings, assumed, k_star=k_star, label=model, file_label=model)


def confidence(model: str, counts: dict, k_star=None, **params):
    """One confidence row from per-depth counts."""
    (row,) = confidence_table([combination(0, model, k_star, **params)], trials(0, counts))
    return row


def history_row(combo, k, seed, trainable, test_err=None, **extra):
    err = (0.05 if trainable else 0.9) if test_err is None else test_err
    return {"combo": combo, "k": k, "seed": seed, "status": "ok", "trainable": trainable, "test_err": err,
            "train_err": err, "diverged": False, "probe_verdict": trainable, "threshold": 0.2, "criterion": "test", **extra}


def write_sweep(d, frontier: list[dict], history: list[dict], sweeper=None):
    d.mkdir(parents=True, exist_ok=True)
    doc = {"frontier": frontier, "history": history, **({"sweeper": sweeper} if sweeper else {})}
    (d / "frontier.json").write_text(json.dumps(doc))
    return d


def frontier_row(combo, model, k_star, upper, lr=0.01, **extra):
    return {"combo": combo, "params": {"model": model, "optim.lr": str(lr), **extra.pop("params", {})},
            "model": model, "lr": lr, "k_star": k_star, "upper": upper, "step": 3, "seeds": 3,
            "confirmed": True, "hit_upper": False, "trials": 0, "failed_trials": 0, "rounds": 3,
            "nonmonotone": [], **extra}
