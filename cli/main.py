"""The `movierec` command: one group, whose commands live in one module per command group."""

from __future__ import annotations

import click

from movierec.cli.benchmark import benchmark
from movierec.cli.data import data
from movierec.cli.evaluate import evaluate, train
from movierec.cli.explain import explain
from movierec.cli.models import models
from movierec.cli.pipeline import pipeline_group
from movierec.cli.query import query
from movierec.cli.recommend import recommend
from movierec.cli.tune import tune


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--verbose",
    is_flag=True,
    expose_value=False,  # acted on at start-up, before TensorFlow loads: see cli/quiet_startup.py
    help="Show TensorFlow's native start-up and C++ log messages (CUDA/cuInit, oneDNN), hidden by default.",
)
def main() -> None:
    """Train, evaluate and query sequential movie recommenders."""


main.add_command(data)
main.add_command(evaluate)
main.add_command(train)
main.add_command(recommend)
main.add_command(explain)
main.add_command(models)
main.add_command(pipeline_group)
main.add_command(query)
main.add_command(tune)
main.add_command(benchmark)
