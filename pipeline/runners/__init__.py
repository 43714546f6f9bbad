"""Thin runners: each takes a PipelineConfig and runs or compiles `create_pipeline(config)`."""
