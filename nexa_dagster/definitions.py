"""The code location: every definition is loaded from the `defs/` folder (one folder per domain). No logic here.

`dagster job execute -m nexa_dagster.definitions`, `dagster dev` (workspace.yaml) and `dg` all load `defs`."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
