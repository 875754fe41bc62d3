"""NexaCompute's Dagster code location: thin assets, resources and jobs over `nexa_core`."""
