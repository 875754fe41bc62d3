"""Training curves PNG from the run's JSONL log: training loss (raw and EMA-smoothed) with validation loss, and
the validation scores per evaluation, side by side in one image."""

from __future__ import annotations

from pathlib import Path

from nexa_core.training.callbacks import read_log

# Logged per evaluation but not a score of the model (time, rate, position).
_NOT_SCORES = ("eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch")

Series = dict[str, list[tuple[int, float]]]


def curve_series(records: list[dict]) -> dict[str, Series]:
    """The plotted data: panel -> series name -> (optimizer step, value) points; empty series are left out."""
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval_loss" in r]
    loss: Series = {"training loss (raw)": [(r["step"], r["loss"]) for r in train],
                    "training loss (EMA)": [(r["step"], r["loss_ema"]) for r in train if "loss_ema" in r],
                    "validation loss": [(r["step"], r["eval_loss"]) for r in evals]}
    scores = sorted({k for r in evals for k in r if k.startswith("eval_") and k not in _NOT_SCORES})
    validation: Series = {f"validation {k.removeprefix('eval_')}": [(r["step"], r[k]) for r in evals if k in r]
                          for k in scores}
    panels = {"loss": {k: v for k, v in loss.items() if v}, "validation": {k: v for k, v in validation.items() if v}}
    return {k: v for k, v in panels.items() if v}


def loss_curve(log_path: str | Path, out_png: str | Path) -> Path | None:
    """Draw the run's curves into `out_png`; None when the log holds neither a training nor a validation point."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on training nodes
    import matplotlib.pyplot as plt

    panels = curve_series(read_log(Path(log_path)))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.5), dpi=100, squeeze=False)
    for ax, (panel, series) in zip(axes[0], panels.items()):
        for name, points in series.items():
            steps, values = zip(*points)
            style = {"alpha": 0.35} if name.endswith("(raw)") else {"marker": "o"} if name.startswith("validation") else {}
            ax.plot(steps, values, label=name, **style)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss" if panel == "loss" else "score")
        ax.set_title("loss" if panel == "loss" else "validation scores")
        ax.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
