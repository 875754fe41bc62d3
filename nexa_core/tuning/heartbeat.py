"""A running trial's heartbeat: a thread that tells the study database every `tune.heartbeat_s` that the trial's
process is alive, so `nexa tune` on any host can fail a trial whose process stopped beating (study.py).

Optuna beats only inside `Study.optimize`; `nexa tune` asks and tells itself, so it beats itself, through the
storage's public `record_heartbeat`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from nexa_core.training.models import first_line

log = logging.getLogger(__name__)


@contextmanager
def beating(storage, trial) -> Iterator[threading.Thread | None]:
    """Beat for `trial` while the block runs (the first beat at once); yields the thread, None when the storage
    has heartbeats off. `storage` is the RDBStorage the study was opened on (study.open_storage)."""
    interval = storage.get_heartbeat_interval()
    if interval is None:
        yield None
        return
    stop = threading.Event()
    # Optuna's own heartbeat thread names the trial by its storage id too; a Trial has no public accessor for it.
    thread = threading.Thread(target=_beat, args=(storage, trial._trial_id, trial.number, interval, stop),
                              name=f"nexa-heartbeat-trial-{trial.number}", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join()


def _beat(storage, trial_id: int, number: int, interval: float, stop: threading.Event) -> None:
    warned = False
    while True:
        try:
            storage.record_heartbeat(trial_id)
        except Exception as err:  # a database blip must not end the trial; the next beat may get through
            if not warned:
                log.warning("trial %d: a heartbeat did not reach the study database (%s); retrying every %s s",
                            number, first_line(err), interval)
                warned = True
        if stop.wait(interval):
            return
