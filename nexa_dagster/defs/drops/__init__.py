"""Data drops: sensors on a folder and an S3 prefix, `raw_dataset` per drop, `incremental_dataset`, and the
sensor that turns each new dataset version into a distillation run."""
