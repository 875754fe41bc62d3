"""Distillation: teacher -> inputs -> outputs -> pairs -> student -> evaluation, per teacher-input partition."""
