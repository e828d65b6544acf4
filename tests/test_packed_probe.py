"""The packed probe's one decision that reaches the study (benchmarks/packed_probe.py): cuDNN's
algorithm search is adopted for the sitting's study chunk only when measured clearly faster
with the CUDA graph working."""
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import packed_probe  # noqa: E402


def run(ms: float, graph: bool = True, failed=None) -> dict:
    return {"ms_per_replica_step": ms, "graph_used": graph, "capture_failed": failed}


def test_search_adopted_only_when_clearly_faster_with_the_graph_working():
    adopt = lambda **v: packed_probe.study_overrides(v)[0]
    assert adopt(base=run(36.4), benchmark=run(20.0)) == ["+trainer.benchmark=true"]
    assert adopt(base=run(36.4), benchmark=run(33.0)) == []                          # within 15%
    assert adopt(base=run(36.4), benchmark=run(20.0, graph=False, failed="x")) == []  # capture failed
    assert adopt(base=run(36.4, graph=False), benchmark=run(20.0)) == []
    assert adopt(base=run(36.4), benchmark={"error": "Timeout: skipped"}) == []
    assert adopt(base=run(36.4)) == []
    reason = packed_probe.study_overrides({"base": run(36.4), "benchmark": run(20.0)})[1]
    assert reason.startswith("benchmark at 0.55x base")
