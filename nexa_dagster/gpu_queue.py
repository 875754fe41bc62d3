"""The op tags every step in pool `gpu` carries, so the Celery executor sends it to the `gpu` queue that only GPU
nodes consume (dagster-celery reads `dagster-celery/queue`; steps without it go to queue `dagster`)."""

from nexa_dagster.execution.celery_settings import GPU_QUEUE

GPU_STEP_TAGS = {"dagster-celery/queue": GPU_QUEUE}
