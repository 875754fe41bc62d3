"""S3StorageResource: where durable copies go, as settings only. Its fields (dagster-aws's S3Resource: region,
endpoint, profile, EnvVar credentials, plus our `prefix`) are merged over `StorageSettings.from_env()`, and every
store, client and drop listing is then made by `nexa_core.storage.settings` from the result. Without a prefix
(here or in NEXA_S3_PREFIX) the durable store is the local mirror folder (embedded default)."""

from typing import Optional

from dagster_aws.s3 import S3Resource

from nexa_core.storage.settings import StorageSettings, check_reachable


class S3StorageResource(S3Resource):
    prefix: Optional[str] = None  # s3://bucket/prefix; unset: NEXA_S3_PREFIX at run time, else local

    def settings(self) -> StorageSettings:
        """This resource's fields over the environment's settings (a field that is set wins)."""
        base = StorageSettings.from_env()
        field = "S3StorageResource.prefix" if self.prefix else base.prefix_field
        return base.merged(prefix=self.prefix, prefix_field=field, endpoint_url=self.endpoint_url,
                           region=self.region_name, profile=self.profile_name,
                           access_key_id=self.aws_access_key_id, secret_access_key=self.aws_secret_access_key,
                           session_token=self.aws_session_token)

    def reachable_settings(self) -> StorageSettings:
        """`settings()`, after one request that the bucket exists and answers: a training step asks before it
        claims a run, so a missing bucket is refused up front rather than at the first best checkpoint."""
        settings = self.settings()
        check_reachable(settings)
        return settings
