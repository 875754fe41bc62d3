"""Model FLOPs utilisation: training FLOPs per token and the GPUs' peak dense 16-bit throughput.

FLOPs per token ≈ 6·N (forward + backward through N parameters) + 12·L·H·T for attention scores and
values (L layers, hidden size H = heads × head dim, T tokens in the sequence), as in PaLM / nanoGPT.
MFU = achieved FLOP/s ÷ the device's peak. The peak is the dense bf16/fp16 tensor-core figure (no sparsity),
the usual denominator even for fp32/tf32 runs, so MFU stays comparable across precisions.
"""

from __future__ import annotations

# Peak dense bf16 FLOP/s by a substring of the NVML/torch device name; longest match wins.
PEAK_BF16_DENSE = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; the PCIe card is lower (756e12), matched below
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "GH200": 989e12,
    "B200": 2250e12,
    "A100": 312e12,
    "A10G": 70e12,
    "A10": 125e12,
    "L40S": 362e12,
    "L4": 121e12,
    "V100": 125e12,  # fp16 tensor cores (no bf16)
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
}


def peak_flops(device_name: str | None) -> float | None:
    if not device_name:
        return None
    matches = [k for k in PEAK_BF16_DENSE if k.lower() in device_name.lower()]
    return PEAK_BF16_DENSE[max(matches, key=len)] if matches else None


def flops_per_token(n_params: int, n_layers: int, hidden: int, seq_len: float) -> float:
    return 6.0 * n_params + 12.0 * n_layers * hidden * seq_len


def model_shape(model) -> tuple[int, int, int]:
    """(parameters, layers, hidden size) from a transformers model's config."""
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None) or 0
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None) or 0
    return sum(p.numel() for p in model.parameters()), int(layers), int(hidden)


def mfu(tokens_per_second: float, tokens_per_sample: float, shape: tuple[int, int, int], peak: float) -> float:
    n, layers, hidden = shape
    return tokens_per_second * flops_per_token(n, layers, hidden, tokens_per_sample) / peak
