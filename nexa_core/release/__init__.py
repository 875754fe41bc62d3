"""Release: run manifests, evaluation gates, champion/challenger promotion, packaging and deployment.

`steps` holds the release decisions the CLI and the Dagster assets both call."""
