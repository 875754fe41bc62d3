"""What a cleanup looks at (`Candidate`) and what it decided (`Plan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nexa_core.common.layout import Layout

KINDS = ("checkpoint", "run", "package", "release", "leftover")
DURABLE_KINDS = ("package", "release")  # kept tier: pruned by age only


@dataclass
class Candidate:
    """One thing cleanup may delete as a unit.

    kind: `checkpoint` (`<scratch>/runs/<run_id>/checkpoints/checkpoint-<step>/`), `run` (the whole
    `<scratch>/runs/<run_id>/` folder), `package` (`<durable>/packages/<run_id>.tar.gz`) or `release`
    (`<durable>/deploy/releases/<run_id>/`), or `leftover`: what a killed process left (a temp package, an
    unpack folder, a new current_model link, or the `<durable>/runs/<run_id>/` folder of an abandoned interrupted
    run without final/, the only run folder under `<durable>/runs/` that is ever a candidate).
    """

    path: Path
    kind: str
    run_id: str
    size_bytes: int  # apparent size of every file under it (symlinks not followed)
    mtime: float  # newest mtime of the folder and anything under it
    reasons: list[str] = field(default_factory=list)  # prune rules it matched ("older than 7 days", ...)
    protected_by: list[str] = field(default_factory=list)  # why it must stay, whatever the rules say
    step: int | None = None  # checkpoints only
    hold: Path | None = None  # a flock its writer holds while it is in use: taken (never waited for) to remove it
    why: str = ""  # one line for the table: the reasons when deleted, the protections or rule misses when kept

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.path}"

    @property
    def prunable(self) -> bool:
        return bool(self.reasons) and not self.protected_by


@dataclass
class Plan:
    """The dry run: `delete` is what `apply_plan` removes, `keep` what stays and why."""

    layout: Layout
    days: float | None
    prune_size: int | None
    keep_latest: int
    now: float
    kinds: tuple[str, ...] = KINDS
    delete: list[Candidate] = field(default_factory=list)
    keep: list[Candidate] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)  # `.deleting-*` from an interrupted apply
    warnings: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return sum(c.size_bytes for c in self.delete)
