"""Distillation: teacher outputs collected into resumable Parquet chunks, filtered pairs and the KD loss.

Submodules import torch/transformers lazily; importing this package is cheap.
  collect   teacher_version, collect_classification, collect_generation, read_outputs
  kd_loss   kd_loss: alpha * CE(gold) + (1 - alpha) * T^2 * KL(teacher_T || student_T) from top-k teacher logits
"""
