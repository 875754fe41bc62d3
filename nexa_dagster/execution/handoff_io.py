"""Step outputs for executors whose steps run on other machines (Celery): the hand-off object pickled to S3 with
the files it points at, so a worker never needs another worker's disk.

The object (PreparedDataset, TrainedModel, a report, a dict naming a run) goes to `<prefix>/dagster-io/storage/...`
as dagster-aws's pickle IO manager writes it; the files it points at (the dataset version, the run folder with
its model, record, evaluation and manifest) go to `<prefix>/dagster-io/files/<tier>/<path in the tier>`, verified,
unchanged files only checked (nexa_core/storage/handoff.py). The next step's worker fetches what it lacks and gets
the object with its paths under its own storage roots. The bucket, endpoint and region are the durable store's
(`NEXA_S3_PREFIX`, `NEXA_S3_ENDPOINT_URL`, `AWS_REGION`; nexa_core.storage.settings); credentials come from
boto3's standard chain on every worker; nothing secret is configured here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_aws.s3.io_manager import PickledObjectS3IOManager

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.storage import parse_s3_uri
from nexa_core.storage.handoff import Shipment, receive_paths, ship, unwrap
from nexa_core.storage.settings import StorageSettings, s3_client

IO_FOLDER = "dagster-io"


class ShippingS3IOManager(PickledObjectS3IOManager):
    """Pickles a `Shipment` (object + files) instead of the bare object; reads back bare objects too."""

    def __init__(self, bucket: str, client: Any, prefix: str, layout: Layout, settings: StorageSettings):
        super().__init__(bucket, client, prefix)
        from nexa_core.storage.s3 import S3Store

        self.layout = layout
        self.files = S3Store(bucket, f"{prefix}/files", client, settings=settings)

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path) -> None:
        shipment = ship(self.files, obj, self.layout)
        if shipment.files or shipment.unshipped:
            context.log.info(f"handing over {len(shipment.files)} file(s) through {self.files.describe()}"
                             + (f"; not under a storage root, so each worker must reach them itself: "
                                f"{', '.join(shipment.unshipped)}" if shipment.unshipped else ""))
        super().dump_to_path(context, shipment, path)

    def load_from_path(self, context: dg.InputContext, path) -> Any:
        stored = super().load_from_path(context, path)
        if not isinstance(stored, Shipment):
            return stored
        value, stats = unwrap(self.files, stored, self.layout)
        if stats["fetched"]:
            context.log.info(f"fetched {stats['fetched']} file(s) from {self.files.describe()} "
                             f"({stats['present']} already here)")
        return value


@dg.io_manager(required_resource_keys={"nexa"},
               config_schema={"prefix": dg.Field(str, is_required=False,
                                                 description="s3://bucket/prefix; unset: NEXA_S3_PREFIX in the step's "
                                                             "process")},
               description="Step outputs pickled to S3 with the files they point at (nexa_dagster/execution/handoff_io.py).")
def handoff_s3_io_manager(context: dg.InitResourceContext) -> ShippingS3IOManager:
    """The shipping IO manager on the project's S3 settings (path-style for S3-compatible servers, retried
    requests) and this worker's storage roots (the recipe's `storage` section, as the run configured it)."""
    settings = StorageSettings.from_env()
    prefix = (context.resource_config or {}).get("prefix")
    if prefix:
        settings = settings.merged(prefix=prefix, prefix_field="resources.io_manager.config.prefix")
    if settings.prefix is None:
        raise NexaError("NEXA_EXECUTOR=celery needs NEXA_S3_PREFIX: steps on different workers hand their "
                        "outputs to each other through S3; set NEXA_S3_PREFIX=s3://bucket/prefix on the "
                        "launching process and every worker")
    bucket, folder = _io_location(settings)
    return ShippingS3IOManager(bucket, s3_client(settings), folder, context.resources.nexa.layout(), settings)


def _io_location(settings: StorageSettings) -> tuple[str, str]:
    """The bucket and the key of `<prefix>/dagster-io`, where outputs (and, under `files/`, their files) go."""
    bucket, key = parse_s3_uri(settings.prefix, settings.prefix_field)
    return bucket, f"{key}/{IO_FOLDER}" if key else IO_FOLDER


def fetcher(layout: Layout) -> Callable[[list[Path]], dict] | None:
    """For a step that finds a run by id (a study's best trial) instead of receiving it as an input: under the
    Celery executor, a function that fetches what was handed over under the given folders; None otherwise (one
    machine, or a disk every step shares)."""
    from nexa_dagster.execution.choice import executor_name

    if executor_name() != "celery":
        return None
    settings = StorageSettings.from_env()
    if settings.prefix is None:
        return None  # the IO manager has already refused to start without it
    from nexa_core.storage.s3 import S3Store

    bucket, folder = _io_location(settings)
    store = S3Store(bucket, f"{folder}/files", settings=settings)  # where ShippingS3IOManager puts them
    return lambda paths: receive_paths(store, paths, layout)
