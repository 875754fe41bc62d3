"""Assets by domain: data, training, evaluation, release (manifest, package, deployment)."""
