"""Step outputs (the hand-off objects: PreparedDataset, TrainedModel, reports) pickled to S3, for executors whose
steps run in other processes on other machines. The bucket, endpoint and region are the durable store's
(`NEXA_S3_PREFIX`, `NEXA_S3_ENDPOINT_URL`, `AWS_REGION`; nexa_core.storage.settings), under `<prefix>/dagster-io/`.
Credentials come from boto3's standard chain on every worker; nothing secret is configured here."""

from __future__ import annotations

from typing import Optional

import dagster as dg
from dagster_aws.s3.io_manager import PickledObjectS3IOManager

from nexa_core.common.errors import NexaError
from nexa_core.storage import parse_s3_uri
from nexa_core.storage.settings import StorageSettings, s3_client

IO_FOLDER = "dagster-io"


class HandoffS3IOManager(dg.ConfigurableIOManagerFactory):
    """dagster-aws's pickle-on-S3 IO manager, on the project's S3 settings (path-style for S3-compatible servers,
    retried requests)."""

    prefix: Optional[str] = None  # s3://bucket/prefix; unset: NEXA_S3_PREFIX in the step's process

    def create_io_manager(self, context) -> PickledObjectS3IOManager:
        settings = StorageSettings.from_env()
        if self.prefix:
            settings = settings.merged(prefix=self.prefix, prefix_field="io_manager.prefix")
        if settings.prefix is None:
            raise NexaError("NEXA_EXECUTOR=celery needs NEXA_S3_PREFIX: steps on different workers hand their "
                            "outputs to each other through S3; set NEXA_S3_PREFIX=s3://bucket/prefix on the "
                            "launching process and every worker")
        bucket, key = parse_s3_uri(settings.prefix, settings.prefix_field)
        return PickledObjectS3IOManager(bucket, s3_client(settings), f"{key}/{IO_FOLDER}" if key else IO_FOLDER)
