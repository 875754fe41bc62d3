"""S3StorageResource: durable copies of runs, over dagster-aws's S3Resource (same fields: region, endpoint,
profile, EnvVar credentials). Without a prefix it falls back to the local mirror folder (embedded default)."""

import os
from typing import Optional

from dagster_aws.s3 import S3Resource

from nexa_core.common.layout import Layout


class S3StorageResource(S3Resource):
    prefix: Optional[str] = None  # s3://bucket/prefix; unset: NEXA_S3_PREFIX at run time, else local

    def store(self, layout: Layout):
        from nexa_core.storage import open_store, parse_s3_uri

        prefix = self.prefix or os.environ.get("NEXA_S3_PREFIX", "").strip()
        if not prefix:
            return open_store(layout.durable / "mirror")
        parse_s3_uri(prefix, "S3StorageResource.prefix")
        endpoint = self.endpoint_url or os.environ.get("NEXA_S3_ENDPOINT_URL") or None
        # Explicit (EnvVar) keys go through dagster-aws's client; otherwise our tuned client and the default chain.
        client = self.get_client() if self.aws_access_key_id or self.profile_name else None
        return open_store(prefix, client=client, endpoint_url=endpoint, region=self.region_name)
