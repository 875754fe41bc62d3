"""The module torchrun runs in every worker of a run launched from Dagster: rank 0 alone speaks Dagster Pipes.

Rank 0 opens the Pipes context (every rank opening it fails the step with "Multiple materialize results"), sends
its log records and each logged step's metrics to the step's log, and reports the one materialization with the
run's results; the other ranks only train. The Pipes files live in the run's folder (shared between nodes), and
their addresses are in the spec, so rank 0 reports wherever the rendezvous placed it (c10d orders nodes by host,
not by --node-rank). nexa_core stays free of dagster: it is called here, never the other way round.

Imports only dagster_pipes and nexa_core (never dagster): workers start fast and need no code location.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

LOGGERS = ("nexa_core",)  # whose records rank 0 forwards to the step's log


def _params_loader(spec: dict):
    """The Pipes addresses: from the environment on the node Dagster started, else from the spec (other nodes)."""
    from dagster_pipes import (
        DAGSTER_PIPES_CONTEXT_ENV_VAR,
        DAGSTER_PIPES_MESSAGES_ENV_VAR,
        PipesEnvVarParamsLoader,
        PipesMappingParamsLoader,
        encode_param,
    )

    if DAGSTER_PIPES_CONTEXT_ENV_VAR in os.environ:
        return PipesEnvVarParamsLoader()
    files = spec["pipes"]
    return PipesMappingParamsLoader({DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_param({"path": files["context"]}),
                                     DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_param({"path": files["messages"]})})


class _ToPipes(logging.Handler):
    def __init__(self, pipes):
        super().__init__(logging.INFO)
        self.pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        level = "warning" if record.levelno >= logging.WARNING else "info"
        getattr(self.pipes.log, level)(f"[rank 0] {self.format(record)}")


def _step_callback(pipes):
    from transformers import TrainerCallback

    class StepMetricsToPipes(TrainerCallback):
        """Each logged step's metrics (loss, eval, throughput) as one line of the step's log."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            numbers = {k: round(v, 6) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
            if numbers:
                pipes.log.info(f"[rank 0] step {state.global_step}: {json.dumps(numbers)}")

    return StepMetricsToPipes()


def materialization_metadata(result, spec: dict) -> dict:
    """What rank 0 reports about the job; the asset adds the run's own figures (it reads them from the run record)."""
    t = spec["torchrun"]
    return {"reported_by": f"rank 0 of {int(os.environ.get('WORLD_SIZE', '1'))}",
            "world_size": int(os.environ.get("WORLD_SIZE", "1")), "nodes": t["nnodes"],
            "nproc_per_node": t["nproc_per_node"], "restarts": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")),
            "resumed_by_restart": bool(result.resumed_from)}


def main(spec_path: str) -> None:
    from nexa_core.training.launch import run_worker

    spec = json.loads(Path(spec_path).read_text())
    if int(os.environ.get("RANK", "0")) != 0 or not spec.get("pipes"):
        run_worker(spec_path)
        return
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes(params_loader=_params_loader(spec)) as pipes:
        handler = _ToPipes(pipes)
        for name in LOGGERS:
            logging.getLogger(name).addHandler(handler)
            logging.getLogger(name).setLevel(logging.INFO)
        result = run_worker(spec_path, callbacks=[_step_callback(pipes)])
        pipes.report_asset_materialization(metadata=materialization_metadata(result, spec))


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    record(main)(sys.argv[1])
