"""`nexa analyze` and the `run_leaderboard` asset: the leaderboard over crafted runs (tests/analysis_builders.py,
every expected figure worked by hand there), sorting, filtering, the file formats, plots, refusals, the Dagster
asset's metadata and its refresh sensor; and one real `nexa train` run whose row must match its own files."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from nexa_core.analysis.leaderboard import build_leaderboard
from nexa_core.analysis.query import filter_runs, sort_runs
from nexa_core.common.layout import Layout
from tests.analysis_builders import BROKEN, RUN1, RUN2, STUDENT, TEACHER_MODEL, TINY_MODEL, craft_runs
from tests.cli_helpers import nexa_in_process
from tests.metadata_helpers import assert_readable, numbers

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def layout(tmp_path):
    return craft_runs(tmp_path)


def _env(layout) -> dict:
    return {"NEXA_SCRATCH": str(layout.scratch), "NEXA_DURABLE": str(layout.durable), "NEXA_SHARED": str(layout.shared)}


def analyze(layout, *args: str) -> tuple[int, str, str]:
    return nexa_in_process("analyze", *args, env=_env(layout))


def _row(board, run_id: str) -> dict:
    return board.runs.set_index("run_id").loc[run_id].to_dict()


def test_each_row_joins_manifest_record_log_telemetry_and_deploy_state(layout):
    board = build_leaderboard(layout)
    assert sorted(board.runs["run_id"]) == sorted([RUN1, RUN2, STUDENT])  # the infra report is not a run
    [warning] = board.warnings
    assert warning.startswith(f"skipped {layout.manifest_path(BROKEN)}: not valid JSON")
    one = _row(board, RUN1)
    assert (one["accuracy"], one["macro_f1"], one["loss"], one["train_loss"], one["f1_neg"]) == (0.8, 0.75, 0.5, 0.6, 0.7)
    # Logged losses 1.0, 0.6, 0.5 (the evaluation record in between has none): mean 0.7, min 0.5, final 0.5.
    assert one["train_loss_mean"] == pytest.approx(0.7) and (one["train_loss_min"], one["train_loss_final"]) == (0.5, 0.5)
    # train + evaluate telemetry: 0.5 + 0.25 GPU-hours, 1.0 + 0.5 USD; energy only where measured (0.2 kWh).
    assert (one["gpu_hours"], one["cost_usd"], one["energy_kwh"]) == (0.75, 1.5, 0.2)
    assert one["telemetry_stages"] == "evaluate,train"
    assert (one["runtime_seconds"], one["global_step"], one["status"], one["base_model"]) == (30.0, 6, "complete", "tiny")
    assert (one["line"], one["model"], one["dataset"], one["dataset_version"]) == ("trained", TINY_MODEL, "reviews.csv@v1", "v1")
    assert one["created_at"] == pd.Timestamp("2026-01-01T10:00:00Z")
    assert (one["deployed"], one["ever_deployed"]) == (False, False)
    two = _row(board, RUN2)
    assert two["train_loss_mean"] == pytest.approx(0.6) and two["train_loss_final"] == 0.4
    assert (two["runtime_seconds"], two["gpu_hours"], two["cost_usd"]) == (60.0, 1.0, 2.0) and pd.isna(two["energy_kwh"])
    assert (two["deployed"], two["ever_deployed"]) == (False, True)  # replaced by the student
    student = _row(board, STUDENT)
    assert (student["line"], student["deployed"], student["ever_deployed"]) == ("student", True, True)
    assert student["runtime_seconds"] == 10.0  # no wall_seconds recorded: HF's train_runtime
    assert all(pd.isna(student[k]) for k in ("train_loss_mean", "gpu_hours", "cost_usd", "f1_neg"))


def test_groups_average_by_model_and_dataset(layout):
    groups = build_leaderboard(layout).groups
    assert list(groups["model"]) == [TINY_MODEL, TEACHER_MODEL]  # best mean accuracy first
    tiny = groups.iloc[0].to_dict()
    assert (tiny["dataset"], tiny["runs"], tiny["deployed"]) == ("reviews.csv@v1", 2, False)
    assert tiny["mean_accuracy"] == pytest.approx(0.85) and tiny["mean_loss"] == pytest.approx(0.4)
    assert tiny["mean_train_loss_final"] == pytest.approx(0.45) and tiny["mean_runtime_seconds"] == 45.0
    assert (tiny["total_gpu_hours"], tiny["total_cost_usd"], tiny["mean_cost_usd"]) == (1.75, 3.5, 1.75)
    student = groups.iloc[1].to_dict()
    assert (student["runs"], student["mean_accuracy"], student["deployed"]) == (1, 0.7, True)
    assert pd.isna(student["total_cost_usd"])  # no telemetry: unknown, not a measured zero


@pytest.mark.parametrize("sort, ascending, order", [
    (None, False, [RUN2, RUN1, STUDENT]),  # default: accuracy, best first
    ("accuracy", True, [STUDENT, RUN1, RUN2]),  # --ascending
    ("loss", False, [RUN2, STUDENT, RUN1]),  # lower is better: ascending
    ("cost_usd", False, [RUN1, RUN2, STUDENT]),  # cheapest first, unknown cost last
    ("-cost_usd", False, [RUN2, RUN1, STUDENT]),  # forced descending, unknown still last
    ("+accuracy", False, [STUDENT, RUN1, RUN2]),
    ("created_at", False, [STUDENT, RUN2, RUN1]),  # newest first
    ("dataset_version,-train_loss_final", False, [RUN1, RUN2, STUDENT]),
    ("deployed,run_id", False, [STUDENT, RUN1, RUN2]),  # deployed first, then by name
])
def test_sort_puts_the_best_first_unless_told(layout, sort, ascending, order):
    assert list(sort_runs(build_leaderboard(layout).runs, sort, ascending)["run_id"]) == order


@pytest.mark.parametrize("filters, kept", [
    (["line=student"], {STUDENT}),
    (["accuracy>=0.8"], {RUN1, RUN2}),
    (["accuracy>0.8"], {RUN2}),
    (["accuracy<=0.8", "line!=student"], {RUN1}),
    (["model~TEACHER"], {STUDENT}),
    (["deployed=true"], {STUDENT}),
    (["ever_deployed=yes", "deployed=false"], {RUN2}),
    (["created_at>2026-01-01T12:00"], {RUN2, STUDENT}),
    (["cost_usd<2"], {RUN1}),  # a run without a recorded cost never matches
    (["dataset_version!=v1"], {STUDENT}),
    (["global_step=4"], {RUN2}),
])
def test_filters_combine_with_and(layout, filters, kept):
    assert set(filter_runs(build_leaderboard(layout).runs, filters)["run_id"]) == kept


def test_cli_prints_the_table_then_the_groups_and_warns_about_the_corrupt_manifest(layout):
    code, out, err = analyze(layout, "--filter", "line=trained")
    assert code == 0
    runs, groups = out.split("\n\n")
    lines = runs.splitlines()
    assert lines[0] == "runs (2)" and lines[1].split()[:4] == ["run_id", "line", "dataset_version", "accuracy"]
    assert [line.split()[0] for line in lines[2:]] == [RUN2, RUN1]
    assert lines[3].split()[3:9] == ["0.8", "0.75", "0.5", "0.7", "0.5", "0.5"]
    assert groups.splitlines()[0] == "by model and dataset (averages)"
    assert groups.splitlines()[2].startswith(TINY_MODEL)
    assert err.strip() == f"warning: skipped {layout.manifest_path(BROKEN)}: not valid JSON " \
                          "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"


@pytest.mark.parametrize("args, flag, bad", [
    (["--sort", "acc"], "--sort", "'acc'"),
    (["--sort=accuracy,-nope"], "--sort", "'nope'"),
    (["--filter", "acc>=0.5"], "--filter", "'acc'"),
    (["--filter", "accuracy>=high"], "--filter 'accuracy>=high'", "'high' is not a number"),
    (["--filter", "model>=", "--filter", "accuracy"], "--filter 'accuracy'", "expected COLUMN OP VALUE"),
    (["--filter", "deployed>1"], "--filter 'deployed>1'", "deployed is true or false"),
    (["--filter", "accuracy~0.8"], "--filter 'accuracy~0.8'", "'~' (contains) works on text columns"),
    (["--plots", "p", "--metric", "acc"], "--metric", "'acc'"),
    (["--format", "parquet"], "--format parquet", "give --output PATH"),
])
def test_bad_flags_exit_2_with_one_line_naming_the_flag_and_column(layout, tmp_path, monkeypatch, args, flag, bad):
    monkeypatch.chdir(tmp_path)
    code, out, err = analyze(layout, *args)
    [line] = [x for x in err.splitlines() if not x.startswith("warning:")]
    assert code == 2 and line.startswith(f"nexa analyze: error: {flag}") and bad in line and out == ""
    if "no column" in line:
        assert "available: run_id, line, model, dataset, dataset_version, created_at, accuracy" in line
    assert not (tmp_path / "p").exists()


def test_csv_json_and_parquet_round_trip(layout, tmp_path):
    expected = sort_runs(build_leaderboard(layout).runs, None)
    code, csv_text, _ = analyze(layout, "--format", "csv")  # no --output: stdout
    assert code == 0
    for fmt in ("csv", "json", "parquet"):
        path = tmp_path / f"board.{fmt}"
        code, out, _ = analyze(layout, "--output", str(path))  # the format from the suffix
        assert code == 0 and out.strip() == str(path)
        back = {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": lambda p: pd.DataFrame(json.loads(p.read_text()))}[fmt](path)
        assert list(back.columns) == list(expected.columns) and list(back["run_id"]) == [RUN2, RUN1, STUDENT]
        for column in ("accuracy", "train_loss_mean", "cost_usd", "runtime_seconds", "gpu_hours"):
            pd.testing.assert_series_equal(back[column].astype(float), expected[column], check_names=False)
        assert list(back["deployed"]) == [False, False, True]
        assert pd.to_datetime(back["created_at"], utc=True).tolist() == expected["created_at"].tolist()
    assert csv_text == (tmp_path / "board.csv").read_text()
    assert pd.read_parquet(tmp_path / "board.parquet")["global_step"].tolist() == [4, 6, 2]
    code, out, _ = analyze(layout, "--groups", "--format", "json")
    assert [g["runs"] for g in json.loads(out)] == [2, 1]
    code, out, _ = analyze(layout, "--groups")
    assert out.splitlines()[0] == "by model and dataset (averages)" and len(out.splitlines()) == 4


def test_plots_are_written_as_png(layout, tmp_path):
    import matplotlib.image

    code, out, _ = analyze(layout, "--plots", str(tmp_path / "plots"), "--format", "json", "--output", str(tmp_path / "b.json"))
    assert code == 0
    written = [Path(p) for p in out.split()[1:]]
    assert [p.name for p in written] == ["metric_over_time.png", "cost_vs_accuracy.png"]
    for png in written:
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        height, width, _ = matplotlib.image.imread(png).shape  # decodes: a whole, valid image
        assert (width, height) == (700, 400)
    assert not [p for p in (tmp_path / "plots").iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_no_manifests_is_a_clear_message_and_exit_0(tmp_path):
    empty = Layout(scratch=tmp_path / "s", durable=tmp_path / "d", shared=tmp_path / "sh")
    code, out, err = analyze(empty, "--format", "csv", "--output", str(tmp_path / "x.csv"), "--sort", "accuracy")
    assert (code, out) == (0, "")
    assert err.strip() == f"nothing to analyze: no run manifests in {empty.manifests_dir} (train a run with `nexa train`)"
    assert not (tmp_path / "x.csv").exists()
    assert analyze(empty, "--sort", "nope")[0] == 2  # a typo is refused even before the first run


def test_no_match_says_so(layout):
    code, out, err = analyze(layout, "--filter", "accuracy>1")
    assert (code, out) == (0, "") and err.splitlines()[-1] == "nothing to analyze: no run matches the filters"


def _recipe_resource(layout):
    from nexa_core.config import validate_config
    from nexa_dagster.resources.recipe import recipe_from_values

    recipe = {"data": {"path": "unused.csv"}, "tracking": {"mlflow": {"enabled": False}},
              "storage": {"scratch": str(layout.scratch), "durable": str(layout.durable), "shared": str(layout.shared)}}
    return recipe_from_values(validate_config(recipe).model_dump(mode="json"))


def _materialize(layout, instance):
    from nexa_dagster.defs.analysis.assets import run_leaderboard

    result = dg.materialize([run_leaderboard], resources={"nexa": _recipe_resource(layout)}, instance=instance)
    assert result.success
    assert_readable(result)  # the project's rules: few plotted numbers, nothing shown as "None"
    [mat] = result.asset_materializations_for_node("run_leaderboard")
    return mat.metadata


def test_run_leaderboard_asset_stores_the_table_and_shows_top_runs_groups_and_plots(layout):
    import base64
    import re

    from nexa_core.analysis.sources import inputs_fingerprint

    meta = _materialize(layout, dg.DagsterInstance.ephemeral())
    assert list(meta)[0] == "plots"
    images = re.findall(r"!\[([a-z ]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", meta["plots"].value)
    assert [alt for alt, _ in images] == ["metric over time", "cost vs accuracy"]
    for (_, encoded), key in zip(images, ("metric_over_time_path", "cost_vs_accuracy_path")):
        assert base64.b64decode(encoded) == Path(meta[key].value).read_bytes()
    top = [r.data for r in meta["top runs"].records]
    assert [r["run_id"] for r in top] == [RUN2, RUN1, STUDENT]
    assert top[1] == {"run_id": RUN1, "line": "trained", "dataset_version": "v1", "created_at": "2026-01-01T10:00:00+00:00",
                           "accuracy": 0.8, "macro_f1": 0.75, "loss": 0.5, "train_loss_final": 0.5, "runtime_seconds": 30.0,
                           "gpu_hours": 0.75, "cost_usd": 1.5, "deployed": False}
    assert top[2]["cost_usd"] is None  # unknown: an empty cell, never the text "None" or NaN
    groups = [r.data for r in meta["by model and dataset"].records]
    assert [(g["model"], g["runs"], g["mean_accuracy"]) for g in groups] == [(TINY_MODEL, 2, 0.85), (TEACHER_MODEL, 1, 0.7)]
    assert (meta["runs"].value, meta["dagster/row_count"].value, meta["skipped_manifests"].value) == (3, 3, 1)
    assert (meta["best_run_id"].value, meta["best_accuracy"].value, meta["deployed_run_id"].value) == (RUN2, 0.9, STUDENT)
    assert meta["fingerprint"].value == inputs_fingerprint(layout)
    stored = pd.read_parquet(meta["leaderboard_path"].value)
    assert meta["leaderboard_path"].value == str(layout.durable / "analysis" / "leaderboard.parquet")
    assert list(stored["run_id"]) == [RUN2, RUN1, STUDENT] and stored["train_loss_mean"].iloc[1] == pytest.approx(0.7)
    assert list(pd.read_parquet(meta["groups_path"].value)["runs"]) == [2, 1]
    assert numbers(meta) == ["best_accuracy", "runs", "dagster/row_count", "skipped_manifests"]


def test_the_sensor_refreshes_on_a_new_manifest_or_deploy_and_not_again_without_one(layout, tmp_path):
    from nexa_dagster.defs.analysis.sensors import run_leaderboard_sensor

    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor, on=layout):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"nexa": _recipe_resource(on)})
        return run_leaderboard_sensor(context)

    first = tick(None)
    assert len(first.run_requests) == 1 and first.cursor
    again = tick(first.cursor)
    assert isinstance(again, dg.SkipReason) and "no new manifest" in again.skip_message

    manifest = json.loads(layout.manifest_path(RUN1).read_text())
    new_id = "tiny_20260105_100000"
    layout.manifest_path(new_id).write_text(json.dumps({**manifest, "run_id": new_id}))
    fired = tick(first.cursor)
    assert [r.run_key for r in fired.run_requests] == [f"leaderboard-{fired.cursor}"] and fired.cursor != first.cursor

    # A pipeline job refreshed the leaderboard itself: the sensor moves its cursor on without a second run.
    (layout.deploy_dir / "current_model").unlink()
    (layout.deploy_dir / "current_model").symlink_to(f"releases/{RUN2}/model")  # a rollback changes "deployed"
    _materialize(layout, instance)
    caught_up = tick(fired.cursor)
    assert not caught_up.run_requests and "already up to date" in caught_up.skip_reason.skip_message
    assert caught_up.cursor not in (fired.cursor, None)

    empty = Layout(scratch=tmp_path / "e", durable=tmp_path / "e/d", shared=tmp_path / "e/s")
    assert "no run manifest" in tick(None, on=empty).skip_message  # nothing to show yet: no run


@pytest.mark.slow
def test_a_real_nexa_train_run_gets_the_row_its_files_say(tiny_model, tiny_csv, tmp_path):
    from nexa_core.training.callbacks import read_log
    from tests.cli_helpers import write_recipe
    from tests.conftest import tiny_recipe

    recipe = tiny_recipe(tiny_model, tiny_csv, tmp_path)
    recipe["tracking"] = {"mlflow": {"enabled": False}}
    code, trained, err = nexa_in_process("train", "--config", str(write_recipe(recipe, tmp_path / "tiny.yaml")))
    assert code == 0, err[-2000:]
    run_id = json.loads(trained[trained.rindex("{\n"):])["run_id"]
    layout = Layout(scratch=tmp_path / "scratch", durable=tmp_path / "durable", shared=tmp_path / "shared")
    manifest = json.loads(layout.manifest_path(run_id).read_text())
    record = json.loads((layout.run_dir(run_id) / "run.json").read_text())
    telemetry = [json.loads((layout.run_dir(run_id) / "telemetry" / f"{s}.json").read_text()) for s in ("evaluate", "train")]
    losses = [r["loss"] for r in read_log(layout.run_dir(run_id) / "logs" / "train_log.jsonl") if "loss" in r]

    code, out, err = analyze(layout, "--format", "json")
    assert code == 0 and err == ""
    [row] = json.loads(out)
    assert row["run_id"] == run_id and row["line"] == "trained" and row["status"] == "complete"
    assert {k: row[k] for k in manifest["metrics"]} == manifest["metrics"]
    assert (row["model"], row["dataset"], row["dataset_version"]) == (manifest["model"], manifest["dataset"], manifest["version"])
    assert pd.Timestamp(row["created_at"]) == pd.Timestamp(manifest["created_at"])
    assert row["dataset_version"] == record["dataset_version"] and row["base_model"] == record["model"] == str(tiny_model)
    assert row["global_step"] == record["train"]["global_step"] > 0
    assert row["runtime_seconds"] == pytest.approx(record["train"]["train_metrics"]["wall_seconds"])
    assert len(losses) >= 3 and row["train_loss_final"] == losses[-1] and row["train_loss_min"] == min(losses)
    assert row["train_loss_mean"] == pytest.approx(sum(losses) / len(losses))
    assert row["gpu_hours"] == pytest.approx(sum(t["gpu_hours"] for t in telemetry))  # 0.0 on a CPU-only machine
    assert row["telemetry_stages"] == "evaluate,train" and (row["deployed"], row["ever_deployed"]) == (False, False)
