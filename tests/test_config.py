"""The one typed config: recipes, dotted overrides, one-line errors, and the launchpad's mirror of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.config import NexaConfig, apply_overrides, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


def test_default_recipe_loads_with_typed_overrides():
    cfg = load_config(ROOT / "configs/default.yaml",
                      ["training.optimizer.lr=0.0001", "training.group_by_length=false", "data.max_samples=100"])
    assert cfg.training.optimizer.lr == pytest.approx(1e-4) and isinstance(cfg.training.optimizer.lr, float)
    assert cfg.training.group_by_length is False and cfg.data.max_samples == 100
    assert cfg.data.drop_labels == ["plot"]


@pytest.mark.parametrize("override, names", [
    ("training.optimizer.lrr=1", "training.optimizer.lrr: unknown key"),
    ("training.optimizer.lr=fast", "training.optimizer.lr:"),
    ("training.batch_size=0", "training.batch_size:"),
    ("training.precision=fp8", "training.precision:"),
    ("evaluation.thresholds={bleu: 0.5}", "evaluation.thresholds:"),
    ("name=a/b", "name:"),
])
def test_bad_overrides_are_rejected_naming_the_key(override, names):
    with pytest.raises(NexaError) as err:
        load_config(ROOT / "configs/default.yaml", [override])
    assert names in str(err.value) and "\n" not in str(err.value)


def test_override_syntax_errors():
    with pytest.raises(NexaError, match="expected key=value"):
        apply_overrides({}, ["training.optimizer.lr"])
    with pytest.raises(NexaError, match="is a value, not a section"):
        apply_overrides({"name": "x"}, ["name.sub=1"])


def test_recipe_file_errors(tmp_path):
    with pytest.raises(NexaError, match="file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(NexaError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(NexaError, match="must be a mapping"):
        load_config(bad)
    bad.write_text("model: {max_length: 64}\n")
    with pytest.raises(NexaError, match="data: Field required"):
        load_config(bad)


def test_storage_defaults_follow_the_runbook_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NEXA_DURABLE", str(tmp_path / "durable"))
    cfg = validate_config({"data": {"path": "x.csv"}})
    assert cfg.storage.durable == str(tmp_path / "durable")


def _fields(cls) -> dict:
    import typing

    from nexa_dagster.config_bridge import _mixed_union

    out = {}
    for name, info in cls.model_fields.items():
        ann = info.annotation
        item = typing.get_args(ann)[0] if typing.get_origin(ann) is list else None
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            out[name] = _fields(ann)
        elif isinstance(item, type) and hasattr(item, "model_fields"):  # tune.space: a list of a model's twin
            out[name] = ["list", _fields(item)]
        elif _mixed_union(ann):  # `int | "auto"` (nproc_per_node): the launchpad takes it as text
            out[name] = str(typing.Optional[str])
        else:
            out[name] = str(ann)
    return out


def test_launchpad_schema_mirrors_the_core_config():
    import dagster as dg

    from nexa_dagster.resources import NexaRecipe

    mirrored = _fields(NexaRecipe)
    core = _fields(NexaConfig)
    assert mirrored == core  # same keys and types, section by section
    schema = NexaRecipe.to_config_schema().as_field().config_type
    assert set(schema.fields) == set(NexaConfig.model_fields)
    assert "lr" in schema.fields["training"].config_type.fields["optimizer"].config_type.fields
    assert isinstance(NexaRecipe.__mro__[1], type) and issubclass(NexaRecipe, dg.ConfigurableResource)
