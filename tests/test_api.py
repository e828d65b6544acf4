"""The notebook API: run_trial's keyword form, its result.json and run folder, its field names."""
import json
import logging
import re

import pytest

from deepdepth.api import TrialResult, compose_config, keyword_overrides, run_trial


def test_keywords_map_to_the_config_keys():
    cfg = compose_config(model="resnet", k=12, epochs=1, lr=0.03, init="fan_in:0.7", seeds=[1, 2],
                         train_samples=None)
    assert (cfg.model.name, cfg.k, cfg.trainer.max_epochs, cfg.optim.lr) == ("resnet", 12, 1, 0.03)
    assert cfg.model.init == "fan_in:0.7" and list(cfg.seeds) == [1, 2] and cfg.data.train_samples is None
    assert "hydra" not in cfg
    assert keyword_overrides(**{"optim.momentum": 0.5}) == ["optim.momentum=0.5"]
    assert compose_config("model=resnet", epochs=2).trainer.max_epochs == 2  # both forms at once


def test_an_unknown_keyword_is_refused_naming_it_and_the_friendly_names():
    with pytest.raises(ValueError, match=r"'epoch'.*epochs.*train_samples"):
        run_trial(epoch=1)


def test_keyword_trial_writes_result_json_in_the_cli_run_folder(mnist_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # a fresh notebook: logging not configured
    result = run_trial(model="cnn_tanh", k=3, epochs=2, data_root=str(mnist_root), check_md5=False,
                       download=False, logger="none")
    assert isinstance(result, TrialResult)
    run_dir = result.run_dir.resolve()
    assert run_dir.parent.parent == (tmp_path / "outputs").resolve()  # outputs/<date>/<time>_<model>_k<k>
    assert re.fullmatch(r"\d\d-\d\d-\d\d_cnn_tanh_k3", run_dir.name)
    record = json.loads((run_dir / "result.json").read_text())
    assert record == dict(result) and result.path == result.run_dir / "result.json"
    seed = result.seed_results[0]
    assert record["test_err"] == seed.test_err_per_epoch and len(seed.test_err_per_epoch) == 2
    assert seed.test_err == seed.test_err_per_epoch[-1] and isinstance(seed.test_err, float)
    out = capsys.readouterr().out
    assert "Epoch 000/002, Train Error" in out and "Epoch 001/002" in out, out  # verbose by default
    assert "cnn_tanh k=3: seed 0:" in out and "result.json" in out
    again = run_trial(model="cnn_tanh", k=3, epochs=1, data_root=str(mnist_root), logger="none",
                      verbose=False, **{"data.check_md5": False})  # a dotted key as it is
    assert again.run_dir != result.run_dir or not (again.run_dir / "result.json").samefile(result.path)
    assert capsys.readouterr().out == ""  # quiet when asked


def test_output_dir_is_where_result_json_goes(mnist_root, tmp_path):
    out = tmp_path / "mine"
    result = run_trial("model=cnn_tanh", "k=3", f"data.root={mnist_root}", "data.check_md5=false",
                       "trainer.max_epochs=1", "logger=none", output_dir=out, verbose=False)
    assert result.run_dir == out and json.loads((out / "result.json").read_text())["k"] == 3
    assert logging.getLogger("deepdepth").level == logging.NOTSET  # the logger is left as it was
