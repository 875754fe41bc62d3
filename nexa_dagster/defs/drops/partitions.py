"""Each data drop (a file in the raw-data folder or under the S3 prefix) is one partition of `raw_dataset`,
named by its file name; the drop sensors add them (`sensors.py` beside this file)."""

import dagster as dg

RAW_DROPS = dg.DynamicPartitionsDefinition(name="raw_drops")
