"""RRN's state updates without retraining (Wu et al. 2017, §4.5), measured on the temporal protocol.

RRN is trained on the training period. The first half of the evaluation period (every known user's
events: validation and test users) is fed through `update_state`, which changes the user and movie
states and no weight; the later half of `--role`'s events is then predicted with and without the
update. The gain is RMSE(without) − RMSE(with): positive means the update helped. Intervals are 95%
user-bootstrap intervals (users resampled, both predictions on the same draws). It also prints how
much step-to-step history the training users have (days with ratings; ratings on a user's first day),
which bounds what the user LSTM can learn about change over time.

    scripts/run python benchmarks/rrn_state_update.py --data ../shared/data/ml-100k
"""

from __future__ import annotations

import json
import tempfile

import click
import numpy as np

from movierec.cli.common import parse_hparams
from movierec.constants import ROLE_NAMES, TEST, VALIDATION
from movierec.data import load_dataset, resolve_dataset
from movierec.evaluation.bootstrap import percentile_interval, resampled_means
from movierec.evaluation.experiment import prepare
from movierec.models import build_model, load_model, save_model
from movierec.models.rrn.steps import DAY, user_steps


def active_days(sequences) -> dict[str, float]:
    """Training users' active days (RRN's daily user steps) and the share of ratings on a user's first."""
    steps = user_steps(sequences, DAY)
    per_user = steps.lengths[steps.lengths > 0]
    return {
        "share_of_ratings_on_first_active_day": float(steps.newbie[steps.event_step].mean()),
        "median_active_days": float(np.median(per_user)),
        "mean_active_days": float(np.mean(per_user)),
    }


def rmse_with_interval(errors: dict[str, np.ndarray], users: np.ndarray, seed: int) -> dict:
    """Each model's RMSE [95% user-bootstrap], and without − with on the same draws."""
    names, means = resampled_means(
        {k: e * e for k, e in errors.items()}, groups=users, n_resamples=1000, seed=seed
    )
    column = {name: np.sqrt(means[:, j]) for j, name in enumerate(names)}
    out = {
        name: {
            "rmse": float(np.sqrt(np.mean(e * e))),
            "interval": list(percentile_interval(column[name], 0.95)),
        }
        for name, e in errors.items()
    }
    gain = column["without_update"] - column["with_update"]
    out["gain"] = {
        "rmse": out["without_update"]["rmse"] - out["with_update"]["rmse"],
        "interval": list(percentile_interval(gain, 0.95)),
    }
    return out


@click.command()
@click.option("--data", required=True, help="Dataset name or folder (as `movierec evaluate --data`).")
@click.option("--role", type=click.Choice([ROLE_NAMES[TEST], ROLE_NAMES[VALIDATION]]), default="test")
@click.option("--seed", default=0, show_default=True, help="Split seed (which users are validation/test).")
@click.option("--set", "hparam_pairs", multiple=True, metavar="KEY=VALUE", help="RRN hyper-parameter.")
def main(data: str, role: str, seed: int, hparam_pairs: tuple[str, ...]) -> None:
    dataset = load_dataset(resolve_dataset(data, None))
    _, stream = prepare(dataset, "temporal", seed=seed)
    seq, roles = stream.sequences, stream.roles
    period = np.flatnonzero((roles == VALIDATION) | (roles == TEST))
    training = stream.training_data()
    start = int(training.sequences.timestamps.max()) + 1  # the evaluation period's start
    middle = start + (int(seq.timestamps[period].max()) - start) // 2
    target = {ROLE_NAMES[r]: r for r in (VALIDATION, TEST)}[role]
    later = np.flatnonzero((roles == target) & (seq.timestamps >= middle))
    first_half = period[seq.timestamps[period] < middle]

    model = build_model("rrn", **{"seed": seed, **parse_hparams(hparam_pairs)}).fit(training)
    users, items, ratings, times = (a[later] for a in (seq.users, seq.items, seq.ratings, seq.timestamps))
    without = model.predict_ratings(users, items, times)
    with tempfile.TemporaryDirectory() as folder:  # update a copy: the trained model stays as it was
        save_model(model, folder)
        updated = load_model(folder)
    report = updated.update_state(
        *(a[first_half] for a in (seq.users, seq.items, seq.ratings, seq.timestamps))
    )
    with_update = updated.predict_ratings(users, items, times)
    result = {
        "role": role,
        "split_seed": seed,
        "fed": report.to_dict(),
        "scored_events": len(later),
        "scored_users": len(np.unique(users)),
        "training_users": active_days(training.sequences),
        **rmse_with_interval(
            {"without_update": without - ratings, "with_update": with_update - ratings}, users, seed
        ),
    }
    click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
