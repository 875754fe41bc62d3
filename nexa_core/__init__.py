"""NexaCompute core library: plain Python for training, evaluation and release. Never imports dagster."""

__version__ = "0.1.0"
