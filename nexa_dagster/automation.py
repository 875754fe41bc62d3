"""Declarative automation for the drop flow: what follows a new drop, and what stops it.

* `FOLLOW_DROPS` (incremental_dataset): any drop materialized since the last handled tick, once no drop
  run is in progress. Unlike `eager()` it does not wait for missing partitions: a registered drop whose run
  failed must not hold back every later drop.
* `FOLLOW_CHECKED` (model, evaluation, release): `eager()` plus every upstream blocking check passed, so a
  model whose evaluation failed its thresholds or lost to the champion is never packaged or deployed.
"""

import dagster as dg

AC = dg.AutomationCondition

FOLLOW_DROPS = (
    AC.any_deps_updated().since_last_handled() & ~AC.any_deps_in_progress() & ~AC.in_progress()
).with_label("follow_new_drops")

FOLLOW_CHECKED = (AC.eager() & AC.all_deps_blocking_checks_passed()).with_label("eager_when_checks_pass")
