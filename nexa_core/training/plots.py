"""Loss curve PNG from the run's JSONL log (raw and EMA-smoothed training loss, validation loss)."""

from __future__ import annotations

from pathlib import Path

from nexa_core.training.callbacks import read_log


def loss_curve(log_path: str | Path, out_png: str | Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on training nodes
    import matplotlib.pyplot as plt

    records = read_log(Path(log_path))
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval_loss" in r]
    if not train and not evals:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], alpha=0.35, label="loss (raw)")
        ax.plot([r["step"] for r in train], [r["loss_ema"] for r in train], label="loss (EMA)")
    if evals:
        ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
