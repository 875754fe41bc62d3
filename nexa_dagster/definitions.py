"""The code location: every definition is loaded from the `defs/` folder (one folder per domain). No logic here.

`dagster job execute -m nexa_dagster.definitions`, `dagster dev` (workspace.yaml) and `dg` all load `defs`.
Bad run config or a bad recipe on the dagster CLI is one line and exit 2 (`cli_errors`), installed before the load.
`.env` then `.env.local` in the working directory fill in what the environment lacks, before any definition reads
it (nexa_core/common/envfiles.py)."""

from pathlib import Path

import dagster as dg

from nexa_core.common.envfiles import load_env_files
from nexa_dagster import cli_errors

cli_errors.install()
load_env_files()

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
