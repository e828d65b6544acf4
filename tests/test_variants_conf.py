"""conf/model/*.yaml and VARIANTS describe the same variants, and train.build honours every key."""
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from deepdepth.models import VARIANTS, build_model

CONF = Path(__file__).resolve().parents[1] / "conf"
FILES = sorted((CONF / "model").glob("*.yaml"))


def test_one_file_per_variant():
    assert sorted(f.stem for f in FILES) == sorted(VARIANTS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_matches_variant(path):
    m = OmegaConf.to_container(OmegaConf.load(path))
    v = VARIANTS[path.stem]
    assert m.pop("name") == path.stem
    assert m.pop("branch_gain", False) == v.branch_gain
    assert m == {"activation": v.activation, "norm": v.norm, "residual": v.residual, "init": v.init}


def compose(*overrides):
    from hydra import compose as hydra_compose, initialize_config_dir
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_train_build_gives_the_variant(name):
    from deepdepth.train import build
    cfg = compose(f"model={name}", "k=6", "seed=4", "replicas=2")
    _, module = build(cfg)
    want = build_model(name, 6, seeds=[4, 5])
    for (n, a), (_, b) in zip(module.net.state_dict().items(), want.state_dict().items()):
        assert torch.equal(a, b), n


def test_gain_from_the_command_line():
    from deepdepth.config import validate
    from deepdepth.train import build
    cfg = compose("model=cnn_tanh_deltaorth", "model.init=delta_orthogonal:1.05", "k=3")
    assert cfg.model.init == "delta_orthogonal:1.05"
    validate(cfg)
    _, module = build(cfg)
    centre = module.net.features[1][0].conv.weight[:, :, 1, 1].detach().double()
    assert torch.allclose(centre.T @ centre, 1.05 ** 2 * torch.eye(4, dtype=torch.double), atol=1e-5)  # 8x4
