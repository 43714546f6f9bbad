"""Module files that TFX's Transform and Trainer load by path (TFX's `module_file`)."""
