"""`movierec tune`: the seeded hyper-parameter search of the pipeline's Tuner, outside TFX.

Every trial trains on the protocol's training events and is scored on its validation users; the test
events are removed before the search starts (`movierec.evaluation.tuning`)."""

from __future__ import annotations

import json

import click

from movierec.cli.common import (
    check_cut_time,
    check_hparams,
    cut_time_option,
    data_options,
    load,
    parse_hparams,
    protocol_options,
    split_params,
)
from movierec.constants import DEFAULT_METRIC
from movierec.data.splits import PROTOCOLS
from movierec.models import MODELS

DEFAULT_TRIALS, DEFAULT_MINUTES, DEFAULT_PATIENCE = 20, 60.0, 10


@click.command("tune")
@data_options
@click.option("--model", "model_name", required=True, type=click.Choice(list(MODELS)), help="Model to tune.")
@click.option(
    "--protocol",
    default="temporal",
    show_default=True,
    type=click.Choice(sorted(PROTOCOLS)),
    help="Protocol whose validation users score the trials.",
)
@click.option(
    "--budget-trials",
    default=DEFAULT_TRIALS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Trials at most, trial 0 (the declared defaults) included.",
)
@click.option(
    "--budget-minutes",
    default=DEFAULT_MINUTES,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Trial time at most (fit + validation scoring, also over resumed runs); no trial starts that "
    "would likely end past it.",
)
@click.option(
    "--patience",
    default=DEFAULT_PATIENCE,
    show_default=True,
    type=click.IntRange(min=0),
    help="Stop after this many finished trials in a row without a better validation metric (0: never).",
)
@click.option(
    "--metric", default=DEFAULT_METRIC, show_default=True, help="Validation metric that ranks the trials."
)
@click.option(
    "--set",
    "hparam_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Fix a hyper-parameter for every trial (it is no longer searched), e.g. --set epochs=3.",
)
@click.option(
    "--bootstrap", default=200, show_default=True, help="User-bootstrap resamples of each trial's interval."
)
@protocol_options
@cut_time_option
@click.option(
    "--output",
    required=True,
    help="Folder of the search (a local path or gs:// URI): KerasTuner's state in search/, the trials in "
    "trials.json, trials.csv and trials.png, the winner in best_hyperparameters.json. Running again with "
    "the same folder resumes the search.",
)
@click.option("--overwrite", is_flag=True, help="Start afresh even where --output holds a search.")
def tune(
    data,
    data_dir,
    strict,
    model_name,
    protocol,
    budget_trials,
    budget_minutes,
    patience,
    metric,
    hparam_pairs,
    bootstrap,
    session_gap,
    seed,
    test_fraction,
    cut_time,
    output,
    overwrite,
) -> None:
    """Search MODEL's declared hyper-parameter space on the validation users (never the test users).

    Trial 0 is the model's defaults; the others are seeded random draws (--seed) from the space that
    `movierec models MODEL` lists under `search`. One line per trial goes to stderr; the ranked table to
    stdout. Pass the winner to `movierec evaluate` with --set, or let `movierec pipeline run --tune` do it.
    """
    from movierec.evaluation.tuning import (
        Budget,
        check_metric,
        check_tunable,
        make_tuner,
        report_lines,
        tuning_data,
    )

    check_cut_time(click.get_current_context(), cut_time, (protocol,))
    fixed = parse_hparams(hparam_pairs)
    check_hparams((model_name,), fixed)
    budget = Budget(budget_trials, budget_minutes * 60, patience or None)
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    try:  # before reading any data
        check_tunable(model_name, fixed)
    except ValueError as error:
        raise click.UsageError(str(error).removeprefix("model: ")) from error
    try:
        check_metric(model_name, metric)
    except ValueError as error:
        raise click.BadParameter(str(error).removeprefix("metric: "), param_hint="--metric") from error
    dataset = load(data, data_dir, strict)
    prepared = tuning_data(
        dataset, protocol, session_gap, **split_params(protocol, test_fraction, seed, cut_time)
    )
    try:
        tuner = make_tuner(
            model_name,
            output,
            budget=budget,
            fixed=fixed,
            seed=seed,
            metric=metric,
            data_description=prepared.description,
            bootstrap=bootstrap,
            overwrite=overwrite,
            log=log,
        )
    except ValueError as error:
        raise click.BadParameter(str(error).removeprefix("directory: "), param_hint="--output") from error
    tuner.search(data=prepared)
    report = tuner.write_report()
    click.echo("\n".join(report_lines(report)))
    if report["best_hparams"] is not None:
        pairs = " ".join(
            f"--set {k}={v if isinstance(v, str) else json.dumps(v)}"
            for k, v in report["best_hparams"].items()
        )
        click.echo(f"best: {pairs}")
