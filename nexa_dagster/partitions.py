"""Dynamic partitions: each teacher-input set (a version such as `v1` or a data drop) is one partition.

    python -m nexa_dagster.partitions add v1      # register a new input set before materializing it
    python -m nexa_dagster.partitions list
"""

import sys

import dagster as dg

TEACHER_INPUTS = dg.DynamicPartitionsDefinition(name="teacher_inputs")
# Each data drop (a file in the raw-data folder or under the S3 prefix) is one partition of `raw_dataset`,
# named by its file name; the drop sensors add them (nexa_dagster/sensors.py).
RAW_DROPS = dg.DynamicPartitionsDefinition(name="raw_drops")


def main(argv: list[str]) -> int:
    from nexa_core.distill.inputs import validate_name
    from nexa_core.errors import NexaError

    with dg.DagsterInstance.get() as instance:
        if argv[:1] == ["add"] and len(argv) > 1:
            try:
                keys = [validate_name(key, "partition key") for key in argv[1:]]
            except NexaError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            new = [k for k in keys if not instance.has_dynamic_partition(TEACHER_INPUTS.name, k)]
            instance.add_dynamic_partitions(TEACHER_INPUTS.name, new)
            print(f"teacher_inputs partitions added: {new or 'none (already present)'}")
        elif argv[:1] == ["list"]:
            print("\n".join(instance.get_dynamic_partitions(TEACHER_INPUTS.name)))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
