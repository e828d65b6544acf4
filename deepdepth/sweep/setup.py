"""What a sweep starts from, free of Hydra: the sweeper's options checked, one search per
combination (its bound, its hint, an optional refinement), the limits a plan assumes, whether
packs mix depths, and the dry run's printout."""
from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, Optional

from ..search import make_search
from .combos import Combo, Options
from .options import SweeperOptions
from .records import Finished, params_id
from .trials import combo_params, unescape
from .cost import device_name, duration
from .plan import PLAN_DRAWS, PLAN_SLOPE, Plan, plan, plan_chunks


def bound_for(overrides: list[str], upper: int, upper_for: dict) -> int:
    """A combination's bound: the first ``upper_for`` entry it matches, keyed by a grid value
    (``resnet: 900``, ``"fan_in:2": 150``) or, where values are ambiguous, a whole override
    (``"model=resnet": 900``); Hydra's escapes in the grid (``fan_in\\:2``) need not be typed."""
    for o in overrides:
        for key in dict.fromkeys((o, o.split("=", 1)[-1], unescape(o), unescape(o.split("=", 1)[-1]))):
            if key in upper_for:
                return upper_for[key]
    return upper


def focused(combos: list[Combo], only: Optional[list]) -> Optional[frozenset]:
    """The combinations ``only`` selects (keyed as ``upper_for``), None where it is empty; an entry
    that matches no combination is refused, as a typo would silently train nothing."""
    if not only:
        return None
    keys = [str(o).replace(" ", "") for o in only]
    unmatched = [k for k in keys if not any(bound_for(c.overrides, False, {k: True}) for c in combos)]
    if unmatched:
        raise ValueError(f"only={unmatched} matches no combination of this sweep; give a grid value "
                         "(e.g. resnet) or a whole override (e.g. model=resnet)")
    return frozenset(c.index for c in combos if bound_for(c.overrides, False, {k: True for k in keys}))


def hint_for(model: Optional[str], hints: Any, other_init: Optional[tuple] = None) -> Optional[int]:
    """The depth a search starts from: ``hints: reference`` reads the original study's k*, or for
    a combination with another init than its variant's, mean field's depth (``mean_field_limit``)."""
    if hints in (None, "none"):
        return None
    if hints == "reference":
        if other_init is not None:
            return other_init[0]
        from deepdepth.science.reference import REFERENCE
        ref = REFERENCE.get(model)
        return getattr(ref, "k_star", None) if ref is not None else None
    return dict(hints).get(model)


def build_searches(grid: list[list[str]], opts: SweeperOptions, base_seed: int,
                   recorded: Optional[dict] = None) -> list:
    """One search per combination. ``recorded`` (``records.recorded_seed_schemes``): a
    combination the sweep dir already holds keeps the seed schemes its trials were drawn with."""
    kw = {k: getattr(opts, k) for k in ("lower", "step", "parallel", "seeds", "rule", "confirm")}
    upper_for = {o.replace(" ", ""): int(u) for o, u in (opts.upper_for or {}).items()}
    orders = {o.replace(" ", ""): v for o, v in opts.order.items()} if isinstance(opts.order, dict) else {}
    refine = {k: v for k, v in asdict(opts.refine).items() if v is not None}
    out = []
    for overrides in grid:
        scheme, later = (recorded or {}).get(params_id(combo_params(overrides)),
                                             (opts.seed_scheme, None))
        order = bound_for(overrides, "gallop", orders) if orders else opts.order or "gallop"
        search = make_search(opts.search or "gallop", **kw, seed=base_seed, seed_scheme=scheme,
                             upper=bound_for(overrides, opts.upper, upper_for), order=order)
        if getattr(search, "order", "gallop") != order:
            raise ValueError(f"order {order!r} needs a search that takes an order (gallop), not {opts.search!r}")
        if refine.get("width") is not None or refine.get("fraction") is not None:
            from deepdepth.search import Refine
            search = Refine(search, **{**refine, "seed_scheme": later or refine.get("seed_scheme")})
        out.append(search)
    return out


def assumed_limits(combos: list[Combo], plan_limits: Optional[dict],
                   found: Optional[dict] = None) -> tuple[dict, list[str]]:
    """The limits a plan assumes, per combination: ``plan_limits`` (keyed as ``upper_for``: a grid
    value such as ``resnet``, or a whole override such as ``optim.lr=0.03``), else what the sweep
    dir's finished trials of that combination show (``limit_from_trials``), else the reference k*
    (for the variant's own init), else mean field's prediction for another init, else half the bound;
    trials that trained at every depth so far only raise that to their deepest depth."""
    from deepdepth.science.reference import REFERENCE

    wanted = {str(o).replace(" ", ""): int(v) for o, v in (plan_limits or {}).items()}
    limits, notes = {}, []
    for c in combos:
        model, s = c.info.model, getattr(c.search, "base", c.search)
        given = bound_for(c.overrides, -1, wanted)
        measured = limit_from_trials(c, found or {})
        other_init = mean_field_limit(c)
        if given >= 0:
            limits[c.index], source = given, "plan_limits"
        elif measured is not None and measured[2]:
            limits[c.index], source = measured[:2]
        elif other_init is not None:
            limits[c.index], source = other_init
        elif model in REFERENCE:
            limits[c.index], source = REFERENCE[model].k_star, "reference k*"
        else:
            limits[c.index], source = s.upper // 2, "no reference: half its bound"
        if given < 0 and measured is not None and not measured[2] and measured[0] > limits[c.index]:
            limits[c.index], source = measured[:2]
        notes.append(f"  {' '.join(c.overrides) or '(defaults)'}: assumed limit {limits[c.index]} ({source}), "
                     f"bound {s.upper}")
    return limits, notes


def limit_from_trials(c: Combo, found: dict) -> Optional[tuple[Optional[int], str, bool]]:
    """(limit, source, bounded) from a combination's finished trials: the deepest depth where most
    of them trained below the shallowest where most did not (None: it has none); bounded False
    where most trained at every depth (that depth is only a lower bound). Where some seeds trained
    but at no depth most, one grid step below the shallowest probe (not None: a plan that assumed
    nothing trainable would refine at its shallowest depths, as no real run would)."""
    by_depth: dict[int, list[bool]] = {}
    for (key, k, _), hit in found.items():
        if key == c.key and hit.trial.get("trainable") is not None:
            by_depth.setdefault(k, []).append(bool(hit.trial["trainable"]))
    if not by_depth:
        return None
    fails = [k for k, v in by_depth.items() if 2 * sum(v) <= len(v)]
    passes = [k for k, v in by_depth.items() if 2 * sum(v) > len(v) and k < min(fails, default=10**9)]
    n = sum(map(len, by_depth.values()))
    source = f"its {n} finished trials" + ("" if fails else ", all trained: a lower bound")
    if not passes and any(map(any, by_depth.values())):  # seeds train, but nowhere most: the limit lies
        step = getattr(getattr(c.search, "base", c.search), "step", 3)  # below the shallowest probe
        return (min(fails) - step if min(fails) > step else None), source + ", none by a majority: a step below them", True
    return (max(passes) if passes else None), source, bool(fails)


def mean_field_limit(c: Combo) -> Optional[tuple[Optional[int], str]]:
    """(limit, source) for a combination whose init is not its variant's (the reference k* is then
    another network's): mean field's depth (None: nothing assumed to train), or half the bound."""
    from deepdepth.meanfield import predict_variant
    from deepdepth.models.init import parse_init
    from deepdepth.models.variants import VARIANTS

    variant = VARIANTS.get(c.info.model)
    if variant is None or c.info.init is None or parse_init(c.info.init) == parse_init(variant.init):
        return None
    s = getattr(c.search, "base", c.search)
    p = predict_variant(c.info.model, {**asdict(variant), "init": c.info.init})
    if not p.applicable:
        return s.upper // 2, f"init {c.info.init}: no reference, no mean-field depth: half its bound"
    k = s.upper if p.k_pred == float("inf") else min(s.upper, 3 * int(p.k_pred // 3))
    return (k if k >= 3 else None), f"init {c.info.init}: mean field's 6 xi depth {p.k_pred:.1f}"


def with_mixing(options: Options, mix, device: str) -> Options:
    """``mix_depths: auto`` packs a round's depths together on a GPU only: there a masked layer
    costs little beside the launch it shares, on a CPU it is pure waste."""
    return replace(options, mix_depths=device != "cpu" if mix in ("auto", None) else bool(mix))


def print_plan(combos, limits, notes, here, options, found, parallelism, auto, mix="auto") -> list:
    """The dry run: the plan on this device (and on the study's GPUs when this is a CPU)."""
    devices = [device_name(here)]
    if auto and devices == ["cpu"]:
        devices = ["cpu", "h100", "h200"]  # no GPU here: what the study would take on one
    drawn = dict(slope=PLAN_SLOPE, draws=PLAN_DRAWS)
    plans = [plan(combos, limits, d, with_mixing(options, mix, d), found, parallelism, **drawn) for d in devices]
    print(f"bisect dry run: nothing is trained. Assumed limits (a simulated trial trains with odds (k / k50)^-"
          f"{PLAN_SLOPE:g}, k50 half a grid step past its limit; the median of {PLAN_DRAWS} drawn futures):")
    print("\n".join(notes))
    print(f"rounds on {devices[0]} (jobs: model@depth x replicas):")
    print("\n".join(plans[0].lines))
    if found:
        print(f"{len(found)} finished trials in the sweep dir are read back, not trained again; the plan is what "
              "is left, timed by the cost model rescaled by their jobs' measured seconds")
    for p in plans:
        print(p.summary())
    if options.time_budget:
        for d in devices:
            print(chunks_summary(plan_chunks(combos, limits, d, with_mixing(options, mix, d), options.time_budget,
                                             found, parallelism, **drawn), options.time_budget))
    return []


def forecast(sweep, plan_limits: Optional[dict], parallelism: int, draws: int = 3) -> Plan:
    """What is left of this run, simulated from where ``sweep`` stands: its searches as they are,
    each limit assumed again from every trial so far, its cost model as calibrated so far (the
    finished trials' results left out, so their seconds are not learnt twice)."""
    found = {key: Finished(hit.trial, {}, hit.job_dir, hit.job_num) for key, hit in sweep.found.items()}
    for t in sweep.history:
        if t.status == "ok":
            found[sweep.combos[t.combo].key, t.k, t.seed] = Finished({"trainable": t.trainable}, {}, t.job_dir, t.job_num)
    limits, _ = assumed_limits(sweep.combos, plan_limits, found)
    budget = sweep.options.time_budget
    left = None if budget is None else max(0.0, budget - (sweep.clock() - sweep.started))
    return plan(sweep.combos, limits, sweep.cost.device, sweep.options, found, parallelism, left,
                slope=PLAN_SLOPE, draws=draws, cost=sweep.cost)


def chunks_summary(chunks: list, budget: float) -> str:
    """One line: how many runs of ``budget`` the plan takes on a device, and their jobs."""
    last = chunks[-1]
    line = (f"in runs of time_budget={duration(budget)}: {len(chunks)} runs on {last.device} "
            f"(jobs per run: {', '.join(str(c.jobs) for c in chunks)}; est. {duration(sum(c.seconds for c in chunks))} "
            f"wall in all)")
    if not last.done:
        line += (" and then stuck: a job no run of this budget can start" if not last.jobs
                 else f", not done after {len(chunks)} runs")
    return line + (f"; the first run: {', '.join(chunks[0].labels)}" if chunks[0].labels else "")
