"""Evaluation of a saved classifier on a prepared split, on the configured device, sorted by token length."""
