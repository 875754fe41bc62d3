"""Retention on random storage histories: whatever the settings, nothing protected is lost and exactly the
expected items go."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from nexa_core.retention import apply_plan, plan_cleanup
from tests.retention_builders import (
    DAY,
    NOW,
    add_checkpoint,
    add_manifest,
    add_package,
    add_release,
    files_under,
    make_layout,
    set_age,
    settle_run,
    snapshot,
    write_deploys,
    write_record,
)


def build_history(root: Path, rng: random.Random):
    """A random storage tree; returns (layout, settings, truth) where truth says what must be kept."""
    layout = make_layout(root)
    days = rng.choice([None, 1, 3, 7, 14])
    prune = rng.choice([None, 60, 150, 400])
    if days is None and prune is None:
        days = 7
    keep_latest = rng.choice([0, 1, 2, 3])
    young = (lambda age: True) if days is None else (lambda age: age < days)
    old = (lambda age: False) if days is None else (lambda age: age > days)
    protected: dict[Path, str] = {}
    expect_gone: set[Path] = set()
    run_ids = [f"run{k}_202601{k + 1:02d}_000000" for k in range(rng.randint(1, 6))]
    released = []
    for run_id in run_ids:
        steps = sorted(rng.sample(range(1, 40), rng.randint(0, 6)))
        steps = [s * 10 for s in steps]
        ages = {s: rng.uniform(0, 20) for s in steps}
        complete = {s: rng.random() < 0.85 for s in steps}
        state_best = rng.choice(steps) if steps else None
        for s in steps:
            add_checkpoint(layout, run_id, s, ages[s], size=rng.choice([10, 100, 300, 1000]),
                           best_step=state_best, complete=complete[s], optimizer=False)
        extra_age = rng.uniform(0, 25)
        logs = layout.scratch / "runs" / run_id / "logs"
        logs.mkdir(parents=True)
        (logs / "events").write_bytes(b"e" * rng.randint(0, 50))
        set_age(logs / "events", extra_age)
        (layout.checkpoints_dir(run_id)).mkdir(parents=True, exist_ok=True)
        settle_run(layout, run_id)
        run_age = min([extra_age, *ages.values()])

        status = rng.choice(["complete", "complete", "complete", "running", "failed", None])
        record_best = rng.choice(steps + [None]) if steps else None
        if status is not None:
            write_record(layout, run_id, status=status, best_step=record_best, final=False)
        # ---- the oracle
        ckpt = {s: layout.checkpoints_dir(run_id) / f"checkpoint-{s}" for s in steps}
        keep = set()
        if status == "running":
            keep |= set(steps)
        if status is not None and record_best is not None:
            keep.add(record_best)
        newest_complete = [s for s in steps if complete[s]]
        if newest_complete and state_best is not None:
            keep.add(state_best)
        if keep_latest:
            keep |= set(steps[-keep_latest:]) | set(newest_complete[-keep_latest:])
        if rng.random() < 0.5:
            m_age = rng.uniform(0, 20)
            target = rng.choice(steps) if steps and rng.random() < 0.6 else None
            add_manifest(layout, run_id, m_age, str(ckpt[target]) if target is not None
                         else str(layout.run_dir(run_id) / "final"))
            if target is not None and young(m_age):
                keep.add(target)
        size = {s: sum(f.stat().st_size for f in ckpt[s].iterdir()) for s in steps}
        doomed = {s for s in steps if s not in keep and (old(ages[s]) or (prune is not None and size[s] > prune))}
        for s in keep:
            protected[ckpt[s]] = "checkpoint"
        if old(run_age) and not keep and status != "running" and doomed == set(steps):
            expect_gone.add(layout.scratch / "runs" / run_id)
        else:
            expect_gone |= {ckpt[s] for s in doomed}
        if rng.random() < 0.6:
            add_package(layout, run_id, age=rng.uniform(0, 20), size=rng.choice([10, 1000]))
        if rng.random() < 0.75:
            add_release(layout, run_id, age=rng.uniform(0, 20))
            released.append(run_id)
        if status == "running":
            protected[layout.scratch / "runs" / run_id] = "running"
            for p in (layout.package_path(run_id), layout.deploy_dir / "releases" / run_id):
                if p.exists():
                    protected[p] = "running"

    deployed: set[str] = set()
    if released and rng.random() < 0.8:
        records, stack = [], []
        for _ in range(rng.randint(1, 8)):
            if len(stack) >= 2 and rng.random() < 0.4:
                stack.pop()
                records.append(("rollback", stack[-1]))
            else:
                run_id = rng.choice(released)
                if not stack or stack[-1] != run_id:
                    stack.append(run_id)
                records.append(("deploy", run_id))
        write_deploys(layout, records)
        deployed = {records[-1][1], *stack[-2:]}
        recent = []
        for _, run_id in reversed(records):
            if run_id not in recent:
                recent.append(run_id)
        deployed |= set(recent[:2])
        for run_id in deployed:
            for p in (layout.package_path(run_id), layout.deploy_dir / "releases" / run_id):
                if p.exists():
                    protected[p] = "deployed"
    for run_id in run_ids:
        for p in (layout.package_path(run_id), layout.deploy_dir / "releases" / run_id):
            if p.exists() and p not in protected:
                age = (NOW - max(q.stat().st_mtime for q in [p, *p.rglob("*")])) / DAY
                if old(age):
                    expect_gone.add(p)
    return layout, dict(days=days, prune_size=prune, keep_latest=keep_latest), protected, expect_gone


@pytest.mark.parametrize("chunk", range(4))
def test_random_histories_never_lose_a_protected_item(tmp_path, chunk):
    for i in range(chunk * 50, chunk * 50 + 50):
        root = tmp_path / f"h{i}"
        layout, settings, protected, expect_gone = build_history(root, random.Random(i))
        before = snapshot(root)

        plan = plan_cleanup(layout, now=NOW, **settings)
        planned = {c.path for c in plan.delete}
        assert planned == expect_gone, (i, settings, sorted(map(str, planned ^ expect_gone)))
        assert not planned & set(protected), i
        result = apply_plan(plan)
        assert result["skipped"] == [] and result["errors"] == [], i

        after = snapshot(root)
        for path in protected:  # still there, every file of it, unchanged
            assert path.exists() and files_under(after, root, path) == files_under(before, root, path), \
                (i, path, protected[path])
        for cand in plan.delete:
            assert not os.path.lexists(cand.path), (i, cand.path)
        survivors = {k: v for k, v in before.items()
                     if not any(k.startswith(os.path.relpath(p, root) + os.sep) or k == os.path.relpath(p, root)
                                for p in planned)}
        after.pop(os.path.join("durable", "deploy", ".lock"), None)  # deploy's lock, taken to delete a release
        assert after == survivors, i  # nothing outside the plan changed
        assert not list(root.rglob(".deleting-*")), i
        shutil.rmtree(root)  # 200 trees of small files: keep pytest's own tmp cleanup cheap
