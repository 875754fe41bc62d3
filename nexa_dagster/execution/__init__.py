"""Where steps run: the executor chosen by NEXA_EXECUTOR (in-process by default, multiprocess, or Celery workers),
the S3 hand-off of step outputs that Celery needs, and the Celery app the workers start from."""
