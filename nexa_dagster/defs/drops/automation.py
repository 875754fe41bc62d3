"""Declarative automation for the drop flow.

`FOLLOW_DROPS` (incremental_dataset): any drop materialized since the last handled tick, once no drop run is in
progress. Unlike `eager()` it does not wait for missing partitions: a registered drop whose run failed must not
hold back every later drop. What follows a new dataset version is `drop_dataset_sensor` (nexa_dagster/sensors.py).
"""

import dagster as dg

AC = dg.AutomationCondition

FOLLOW_DROPS = (
    AC.any_deps_updated().since_last_handled() & ~AC.any_deps_in_progress() & ~AC.in_progress()
).with_label("follow_new_drops")
