"""Starting node 0's torchrun agent through Dagster Pipes (`dg.PipesSubprocessClient`), for GPUTrainerResource.

The context and message files sit in the run's folder, not in a temp folder of this machine, so rank 0 can report
from any node (nexa_dagster/torchrun_worker.py reads their addresses from the spec). What rank 0 reports becomes
the metadata of the asset's one materialization (`reported_metadata`); nothing is yielded from the session itself.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError  # not exported by `dagster` in 1.13


class PipesTorchrunLauncher:
    """A launcher for nexa_core.training.launch: runs the agent command in a Pipes session of `context`'s step."""

    entry = "nexa_dagster.torchrun_worker"

    def __init__(self, context: dg.AssetExecutionContext | dg.OpExecutionContext):
        self.context = context
        self.invocation = None
        self.files: dict[str, str] = {}

    def spec_fields(self, run_dir: Path) -> dict:
        folder = Path(run_dir) / "pipes"
        folder.mkdir(parents=True, exist_ok=True)
        self.files = {"context": str(folder / "context.json"), "messages": str(folder / "messages.jsonl")}
        return {"pipes": self.files}

    def run(self, command: list[str], env: dict[str, str]) -> int:
        client = dg.PipesSubprocessClient(context_injector=dg.PipesFileContextInjector(self.files["context"]),
                                          message_reader=dg.PipesFileMessageReader(self.files["messages"]))
        try:
            self.invocation = client.run(context=self.context, command=command, env=env)
        except DagsterPipesExecutionError as err:  # the agent's exit status; the ranks' reports say the rest
            self.context.log.error(str(err))
            return 1
        return 0

    def reported_metadata(self) -> dict:
        """The values rank 0 reported, plain ({} when training ran in one process, without Pipes): the asset formats
        them with its own figures (nexa_dagster/metadata.py)."""
        if self.invocation is None:
            return {}
        return {k: v.value for k, v in (self.invocation.get_materialize_result().metadata or {}).items()}
