"""A Dagster run and the model runs it trained link both ways: the run carries the model run id as a tag (the Runs
page filters by it), and the model asset's metadata carries the run id next to the Dagster run that made it."""

from __future__ import annotations

import dagster as dg
import pytest

from nexa_dagster.run_tags import RUN_ID_TAG, TEACHER_RUN_ID_TAG
from tests.dagster_helpers import metadata, run_job
from tests.tiny import make_tiny_bert


def _runs_tagged(instance, key: str, value: str) -> list[str]:
    return [run.run_id for run in instance.get_runs(filters=dg.RunsFilter(tags={key: value}))]


def test_a_training_run_is_tagged_with_the_model_run_id_it_trained(recipe):
    instance = dg.DagsterInstance.ephemeral()
    result = run_job("train", recipe, instance, selection=["training_source", "training_dataset", "trained_model"])
    assert result.success
    model_run = metadata(result, "trained_model")["run_id"]
    assert model_run.startswith("tiny_")
    assert instance.get_run_by_id(result.run_id).tags[RUN_ID_TAG] == model_run
    assert _runs_tagged(instance, RUN_ID_TAG, model_run) == [result.run_id]
    # The materialization that carries run_id belongs to that Dagster run: the way back.
    [event] = instance.fetch_materializations(dg.AssetKey("trained_model"), limit=1).records
    assert event.run_id == result.run_id


@pytest.mark.slow
def test_a_distillation_run_is_tagged_with_its_teacher_and_student_run_ids(recipe, tmp_path):
    recipe["model"]["name_or_path"] = str(make_tiny_bert(tmp_path / "teacher_base", layers=4))
    recipe["distill"] = {"student_layers": 2, "top_k": 2, "chunk_size": 64}
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("teacher_inputs", ["v1"])
    chain = ["training_source", "training_dataset", "teacher_model", "teacher_inputs", "teacher_outputs",
             "distillation_pairs", "student_model"]
    result = run_job("distill", recipe, instance, partition="v1", selection=chain)
    assert result.success
    teacher, student = metadata(result, "teacher_model")["run_id"], metadata(result, "student_model")["run_id"]
    assert student.startswith("tiny-student_") and teacher.startswith("tiny-teacher_")
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags[RUN_ID_TAG] == student and tags[TEACHER_RUN_ID_TAG] == teacher
    assert _runs_tagged(instance, TEACHER_RUN_ID_TAG, teacher) == [result.run_id]
