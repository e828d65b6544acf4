"""The packed probe's one decision that reaches the study (benchmarks/packed_probe.py): the
fastest setting of the study's own arithmetic (cuDNN's algorithm search, channels-last) is
adopted for the sitting's study chunk only when measured clearly faster with the CUDA graph
working; TF32, another arithmetic, never."""
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import packed_probe  # noqa: E402


def run(ms: float, graph: bool = True, failed=None) -> dict:
    return {"ms_per_replica_step": ms, "graph_used": graph, "capture_failed": failed}


def test_fastest_neutral_setting_adopted_only_when_clearly_faster_with_the_graph_working():
    adopt = lambda **v: packed_probe.study_overrides(v)[0]
    assert adopt(base=run(36.4), benchmark=run(20.0)) == ["+trainer.benchmark=true"]
    assert adopt(base=run(36.4), benchmark=run(20.0), channels_last=run(30.0),
                 channels_last_benchmark=run(1.0)) == ["+trainer.benchmark=true"]  # an unknown name is no setting
    assert adopt(base=run(36.4), benchmark=run(20.0), **{"channels_last+benchmark": run(15.0)}) == [
        "memory_format=channels_last", "+trainer.benchmark=true"]
    assert adopt(base=run(36.4), benchmark=run(33.0), channels_last=run(34.0)) == []  # within 15%
    assert adopt(base=run(36.4), tf32=run(10.0), benchmark=run(35.0)) == []          # another arithmetic
    assert adopt(base=run(36.4), benchmark=run(20.0, graph=False, failed="x")) == []  # capture failed
    assert adopt(base=run(36.4, graph=False), channels_last=run(20.0)) == []
    assert adopt(base=run(36.4), benchmark={"error": "Timeout: skipped"}) == []
    assert adopt(base=run(36.4)) == []
    reason = packed_probe.study_overrides({"base": run(36.4), "benchmark": run(20.0)})[1]
    assert reason.startswith("benchmark at 0.55x base")
