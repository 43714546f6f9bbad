"""The functions TFX's Transform and Trainer import by name (`preprocessing_fn`, `run_fn`)."""
