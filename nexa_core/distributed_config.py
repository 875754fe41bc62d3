"""`training.distributed`: how many processes train a run, on how many nodes, and what their environment holds.

Split out of nexa_core/config.py (which re-exports it). The fields keep what the recipe declared (unset stays
unset), so a recipe dumped and validated again, or a launchpad override of one field, never meets a value the
validator filled in; `processes()` and `per_node()` give the resolved counts.
"""

from __future__ import annotations

import re
from typing import Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from nexa_core.common.section import Section as _Section

# The infra runbook's defaults for every training node (seeds/infra_runbook.md, step 1): NCCL without InfiniBand,
# peer-to-peer on, INFO logs; 8 OpenMP threads per process. The real environment of the launcher wins over them.
RUNBOOK_ENV = {"NCCL_DEBUG": "INFO", "NCCL_IB_DISABLE": "1", "NCCL_P2P_DISABLE": "0", "OMP_NUM_THREADS": "8"}
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENDPOINT_RE = re.compile(r"^(?P<host>[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})$")


class DistributedConfig(_Section):
    # Total processes (backwards compatible); unset: nodes x nproc_per_node. >1 launches torchrun workers.
    world_size: Optional[int] = Field(default=None, ge=1)
    nodes: int = Field(default=1, ge=1)  # machines; >1 needs rdzv_endpoint, and each other node runs the node command
    # Processes per node: a number, or `auto` (one per visible GPU; 1 on CPU). Unset: world_size / nodes, else 1.
    nproc_per_node: Optional[Union[int, Literal["auto"]]] = None
    # host:port of the c10d rendezvous every node joins (node 0's address, e.g. nexa-train-0.nexa-train:29400).
    rdzv_endpoint: Optional[str] = None
    # torchrun --max-restarts: a failed worker restarts the node's workers, which resume from the last checkpoint.
    max_restarts: int = Field(default=0, ge=0, le=100)
    # Set in every worker's environment (unless already set there) and recorded in the run's fingerprint. Keys given
    # here replace the runbook's default of that key; "" leaves a default variable unset.
    env: dict[str, str] = Field(default_factory=lambda: dict(RUNBOOK_ENV))
    seed: int = 42  # seeds data split order, init and dropout: same seed, same model on CPU

    @field_validator("env", mode="before")
    @classmethod
    def _runbook_defaults(cls, value):
        if not isinstance(value, dict):
            return value
        bad = [k for k in value if not isinstance(k, str) or not ENV_NAME_RE.fullmatch(k)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an environment variable name; use letters, digits and _")
        return {**RUNBOOK_ENV, **{k: str(v) for k, v in value.items()}}

    @field_validator("nproc_per_node", mode="before")
    @classmethod
    def _count_or_auto(cls, value):
        if value is None or value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() or int(value) < 1:
            raise ValueError("use a number of processes (1 or more) or auto (one per visible GPU)")
        return int(value)

    @field_validator("rdzv_endpoint")
    @classmethod
    def _host_port(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        match = ENDPOINT_RE.fullmatch(value.strip())
        if not match or not 0 < int(match["port"]) < 65536:
            raise ValueError("use host:port of the rendezvous on node 0, e.g. nexa-train-0.nexa-train:29400")
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> DistributedConfig:
        declared = self.world_size
        if declared is not None and self.nproc_per_node == "auto":
            raise ValueError(f"world_size={declared} and nproc_per_node=auto contradict each other; set only one "
                             "of training.distributed.world_size and training.distributed.nproc_per_node")
        if declared is not None and isinstance(self.nproc_per_node, int) and declared != self.nodes * self.nproc_per_node:
            raise ValueError(f"world_size={declared} contradicts nodes={self.nodes} x nproc_per_node="
                             f"{self.nproc_per_node} (= {self.nodes * self.nproc_per_node}); set "
                             f"training.distributed.world_size={self.nodes * self.nproc_per_node} or leave it out")
        if declared is not None and self.nproc_per_node is None and declared % self.nodes:
            raise ValueError(f"world_size={declared} is not a multiple of nodes={self.nodes}; set "
                             "training.distributed.nproc_per_node (processes on each node) instead")
        if self.nodes > 1 and not self.rdzv_endpoint:
            raise ValueError(f"nodes={self.nodes} needs training.distributed.rdzv_endpoint (host:port that every node "
                             "reaches on node 0, e.g. nexa-train-0.nexa-train:29400)")
        return self

    def per_node(self, device: str = "auto") -> int:
        """Processes on each node; `auto` counts the GPUs visible here (1 with none, or on training.device=cpu)."""
        if self.nproc_per_node == "auto":
            if device == "cpu":
                return 1
            from nexa_core.common.gpu_count import visible_gpu_count

            return max(visible_gpu_count(), 1)
        if self.nproc_per_node is not None:
            return self.nproc_per_node
        return (self.world_size or self.nodes) // self.nodes

    def processes(self, device: str = "auto") -> int:
        """The world size: every process on every node."""
        return self.nodes * self.per_node(device)

    def declares_several(self) -> bool:
        """More than one process, as declared (`auto` counts: it means one per GPU), without counting GPUs."""
        return self.nproc_per_node == "auto" or self.nodes * (self.nproc_per_node or 1) > 1 or (self.world_size or 1) > 1
