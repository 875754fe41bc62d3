"""Each teacher-input set (a version such as `v1`, or `drops-<dataset version>` from the drop flow) is one
partition of everything downstream of the teacher. Add one with `python -m nexa_dagster.partitions add v1`."""

import dagster as dg

TEACHER_INPUTS = dg.DynamicPartitionsDefinition(name="teacher_inputs")
