"""Where a run is tracked: the MLflow URI, experiment and registry name, resolved once from the config, and the
checks that refuse bad tracking input before any training starts.

URI precedence: `tracking.mlflow.tracking_uri`, else MLFLOW_TRACKING_URI, else the embedded store under
`<storage.durable>/mlflow/` (MLflow 3's own default would be an mlflow.db in the working directory)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from nexa_core.common.errors import NexaError
from nexa_core.config import NexaConfig
from nexa_core.tracking.params import strip_userinfo

ENV_URI = "MLFLOW_TRACKING_URI"
SCHEMES = ("http", "https", "sqlite", "file", "postgresql", "mysql", "databricks")
MANAGED_TAG = "nexa.managed"  # on registered models this platform created: another team's model is never touched
# MLflow retries an unreachable server 7 times with doubling back-off (minutes); a run must not stall that long.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


@dataclass(frozen=True)
class MlflowSettings:
    uri: str  # may carry credentials: never logged or written (see `display_uri`)
    setting: str  # where the URI came from, for error messages
    experiment: str
    registered_model: str
    log_model: bool
    artifact_location: str | None  # the embedded store's artifact folder; a server chooses its own

    @property
    def display_uri(self) -> str:
        return strip_userinfo(self.uri)

    @property
    def embedded(self) -> bool:
        return self.artifact_location is not None


def embedded_dir(durable: str | Path) -> Path:
    return Path(durable).expanduser().resolve() / "mlflow"


def mlflow_settings(cfg: NexaConfig) -> MlflowSettings | None:
    """The settings, or None when tracking.mlflow.enabled is false (then nothing is logged or created)."""
    m = cfg.tracking.mlflow
    if not m.enabled:
        return None
    for name, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage reports from training nodes
    name = m.registered_model or cfg.name
    if m.tracking_uri or os.environ.get(ENV_URI):
        uri, setting = (m.tracking_uri, "tracking.mlflow.tracking_uri") if m.tracking_uri else (os.environ[ENV_URI], ENV_URI)
        return MlflowSettings(uri.rstrip("/"), setting, m.experiment, name, m.log_model, None)
    folder = embedded_dir(cfg.storage.durable)
    return MlflowSettings(f"sqlite:///{folder / 'mlflow.db'}", "tracking.mlflow (embedded store)", m.experiment, name,
                          m.log_model, (folder / "artifacts").as_uri())


def check_tracking(cfg: NexaConfig) -> MlflowSettings | None:
    """Refuse a bad URI, an unreachable server or a registry name owned by someone else, in one line naming the
    setting, before a dataset version or a run folder is written."""
    settings = mlflow_settings(cfg)
    if settings is None:
        return None
    fix = "fix it, or set tracking.mlflow.enabled: false"
    parsed = urlparse(settings.uri)
    if parsed.scheme not in SCHEMES:
        raise NexaError(f"{settings.setting} {settings.display_uri!r}: not an MLflow tracking URI (scheme must be one "
                        f"of {', '.join(SCHEMES)}, e.g. http://127.0.0.1:5000); {fix}")
    if parsed.scheme in ("http", "https"):
        _check_server(settings, fix)
    elif settings.embedded:
        embedded_dir(cfg.storage.durable).mkdir(parents=True, exist_ok=True)
    if settings.log_model:
        _check_registry_name(settings)
    return settings


def _check_server(settings: MlflowSettings, fix: str) -> None:
    import requests

    try:
        response = requests.get(f"{settings.uri}/health", timeout=5)
    except requests.RequestException as err:
        reason = type(err).__name__
        raise NexaError(f"{settings.setting} {settings.display_uri}: MLflow server not reachable ({reason}); start it "
                        f"(`mlflow server --host 127.0.0.1 --port 5000`), {fix}") from None
    if response.status_code != 200:
        raise NexaError(f"{settings.setting} {settings.display_uri}: /health answered HTTP {response.status_code}, not "
                        f"an MLflow server; {fix}")


def _check_registry_name(settings: MlflowSettings) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not settings.registered_model.strip() or "/" in settings.registered_model:
        raise NexaError(f"tracking.mlflow.registered_model {settings.registered_model!r}: use a name without '/'")
    try:
        model = MlflowClient(settings.uri, settings.uri).get_registered_model(settings.registered_model)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return
        raise NexaError(f"{settings.setting} {settings.display_uri}: the model registry refused a lookup "
                        f"({err.error_code}); fix the URI or credentials, or set tracking.mlflow.log_model: false") from None
    if model.tags.get(MANAGED_TAG) != "true":
        raise NexaError(f"tracking.mlflow.registered_model {settings.registered_model!r}: a registered model of that "
                        "name exists and was not created by NexaCompute; pick another name (its champion alias would "
                        "be moved by deploys)")
