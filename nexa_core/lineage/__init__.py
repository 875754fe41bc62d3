"""Lineage and reproduction: the chain from a model back to its raw data (`nexa lineage`), and a recorded run
trained again from its config snapshot on its stored dataset version, its metrics compared (`nexa reproduce`)."""

from nexa_core.lineage.chain import UNKNOWN, Node, lineage
from nexa_core.lineage.reproduce import Reproduction, reproduce

__all__ = ["UNKNOWN", "Node", "Reproduction", "lineage", "reproduce"]
