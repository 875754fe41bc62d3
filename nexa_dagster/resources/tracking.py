"""MLflowTrackingResource: where the training assets' MLflow runs go, over nexa_core/tracking.

Unset fields keep the recipe's `tracking.mlflow` section (so YAML recipes, `--override` and the launchpad's
`resources.nexa.config.tracking` all set them); a field set here wins, e.g. `tracking_uri=dg.EnvVar(...)` in a
deployment. Not the legacy dagster-mlflow resource: it pins dagster and pandas<3 and ends runs at the wrong moment.
`scope(context)` tags every MLflow run a step opens with the Dagster run, asset and partition."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import dagster as dg

from nexa_core.common.errors import NexaError
from nexa_core.config import NexaConfig, validate_config


class MLflowTrackingResource(dg.ConfigurableResource):
    enabled: Optional[bool] = None  # None: the recipe's tracking.mlflow.enabled
    tracking_uri: Optional[str] = None  # None: the recipe's, else MLFLOW_TRACKING_URI, else the embedded store
    experiment: Optional[str] = None
    registered_model: Optional[str] = None

    def apply(self, cfg: NexaConfig) -> NexaConfig:
        override = {k: getattr(self, k) for k in ("enabled", "tracking_uri", "experiment", "registered_model")
                    if getattr(self, k) is not None}
        if not override:
            return cfg
        raw = cfg.model_dump(mode="json")
        raw["tracking"]["mlflow"].update(override)
        try:
            return validate_config(raw)
        except NexaError as err:
            raise dg.Failure(description=f"MLflowTrackingResource: {err}") from None

    @contextmanager
    def scope(self, context: dg.AssetExecutionContext) -> Iterator[None]:
        from nexa_core.tracking.scope import tracking_scope

        partition = context.partition_key if context.has_partition_key else None
        with tracking_scope(**{"dagster.run_id": context.run_id, "dagster.job": context.job_name,
                               "dagster.asset_key": context.asset_key.to_user_string(), "dagster.partition": partition}):
            yield


def tracking_values(run_dir: Path | None) -> dict[str, Any]:
    """The asset's link to its MLflow run (the run page on a server or `make mlflow-ui`), and the run id."""
    from nexa_core.tracking.runs import read_tracking

    record = read_tracking(run_dir) if run_dir else None
    if not record:
        return {}
    values: dict[str, Any] = {"mlflow_run_id": record.get("run_id"), "mlflow_tracking_uri": record.get("uri")}
    if record.get("url"):
        values["mlflow_run"] = dg.MetadataValue.url(record["url"])
    if record.get("failure"):
        values["mlflow_failure"] = record["failure"]
    return values


def run_url(values: dict[str, Any]) -> str | None:
    link = values.get("mlflow_run")
    return link.value if isinstance(link, dg.UrlMetadataValue) else None
