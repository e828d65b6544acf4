"""conf/model/*.yaml is the one definition of the variants: VARIANTS reads it, and train.build honours every key."""
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from deepdepth.models import VARIANTS, DepthNet, Variant, build_model, conf_dir
from deepdepth.models.variants import load_variants

CONF = Path(__file__).resolve().parents[1] / "conf"
FILES = sorted((CONF / "model").glob("*.yaml"))


def test_variants_are_read_from_the_installed_conf_dir():
    assert conf_dir().resolve() == CONF.resolve()
    assert list(VARIANTS) == [f.stem for f in FILES]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_variant_is_its_file(path):
    m = OmegaConf.to_container(OmegaConf.load(path))
    assert m.pop("name") == path.stem
    assert asdict(VARIANTS[path.stem]) == {"branch_gain": False, **m, "widths": tuple(m.get("widths", (4, 8, 16)))}


def test_a_new_file_is_a_new_variant(tmp_path):
    """An 11th variant that recombines existing options is one YAML file."""
    (tmp_path / "cnn_elu_deltaorth.yaml").write_text(
        "name: cnn_elu_deltaorth\nactivation: elu\nnorm: false\nresidual: false\ninit: delta_orthogonal:1.1\n")
    variants = load_variants(tmp_path)
    assert variants == {"cnn_elu_deltaorth": Variant("elu", False, False, "delta_orthogonal:1.1")}
    assert DepthNet(3, seeds=0, **asdict(variants["cnn_elu_deltaorth"]))(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


@pytest.mark.parametrize("text, match", [
    ("name: other\nactivation: elu\nnorm: false\nresidual: false\ninit: fan_in\n", "'name' must be"),
    ("name: bad\nactivation: elu\nnorm: false\nresidual: false\ninit: fan_in\ndepth: 3\n", "keys must be"),
    ("name: bad\nactivation: gelu\nnorm: false\nresidual: false\ninit: fan_in\n", "unknown activation"),
    ("name: bad\nactivation: elu\nnorm: false\nresidual: false\ninit: xavier\n", "unknown init"),
    ("name: bad\nactivation: elu\nnorm: 'no'\nresidual: false\ninit: fan_in\n", "true or false"),
])
def test_a_bad_file_is_refused_by_name(tmp_path, text, match):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_variants(tmp_path)


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
    from deepdepth.trial.config import validate
    from deepdepth.train import build
    cfg = compose("model=cnn_tanh_deltaorth", "model.init=delta_orthogonal:1.05", "k=3")
    assert cfg.model.init == "delta_orthogonal:1.05"
    validate(cfg)
    _, module = build(cfg)
    centre = module.net.features[1][0].conv.weight[:, :, 1, 1].detach().double()
    assert torch.allclose(centre.T @ centre, 1.05 ** 2 * torch.eye(4, dtype=torch.double), atol=1e-5)  # 8x4
