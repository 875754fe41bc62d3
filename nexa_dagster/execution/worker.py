"""The Celery app a worker starts from; it runs one Dagster step per task, on the settings in the environment.

    celery -A nexa_dagster.execution.worker worker -Q dagster -n cpu-1@%h              # any node: the other steps
    celery -A nexa_dagster.execution.worker worker -Q gpu -c <GPUs> -n gpu-1@%h        # GPU nodes only
    celery -A nexa_dagster.execution.worker worker -Q dagster,gpu ...                  # one node serving both

A worker needs what a step needs, from its environment or `.env`/`.env.local` in its working directory: the code
(this package), the instance's variables (DAGSTER_PG_*, the compute-log bucket), NEXA_CELERY_BROKER,
NEXA_S3_PREFIX and S3 credentials, the recipe (NEXA_CONFIG) and the NEXA_SCRATCH/NEXA_DURABLE/NEXA_SHARED roots. It
does not need DAGSTER_HOME: each task carries the instance's reference (with env-var names, not values).
"""

import os

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from nexa_core.common.envfiles import load_env_files
from nexa_dagster.execution.celery_settings import CelerySettings

# The broker may be named only in .env.local: read it before the app is built (the code location, loaded with the
# first step, would read it too late for that).
load_env_files()
# A worker only ever runs Celery steps: its code location must read and write step outputs on S3 like the launcher.
os.environ["NEXA_EXECUTOR"] = "celery"

app = make_app(CelerySettings.from_env().app_args())
execute_plan = create_task(app)
