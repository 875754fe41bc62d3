"""Register teacher-input sets (partitions of `teacher_inputs`, see defs/distillation/partitions.py) from a shell:

    python -m nexa_dagster.partitions add v1      # register a new input set before materializing it
    python -m nexa_dagster.partitions list
"""

import sys

import dagster as dg

from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS


def main(argv: list[str]) -> int:
    from nexa_core.common.errors import NexaError
    from nexa_core.data.names import validate_name

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
