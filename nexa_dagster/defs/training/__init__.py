"""Fine-tuning: `training_dataset` -> `trained_model` -> `evaluation_report`, and `training_pipeline`."""
