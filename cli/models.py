"""`movierec models`: the registry's models and their hyper-parameters (type, default, meaning, the
space `movierec tune` searches), read from each model's config class, so nothing is built or trained."""

from __future__ import annotations

import click

from movierec.cli.common import echo_json
from movierec.models import MODELS, describe, get_spec


@click.command("models")
@click.argument("names", nargs=-1, type=click.Choice(list(MODELS)))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(names: tuple[str, ...], as_json: bool) -> None:
    """List the models (or NAMES) with every hyper-parameter `--set KEY=VALUE` accepts."""
    listing = {
        name: {
            "summary": get_spec(name).summary,
            "rating": get_spec(name).rating,
            "hyperparameters": describe(get_spec(name).factory.config_class),
        }
        for name in names or MODELS
    }
    if as_json:
        echo_json(listing)
        return
    for name, entry in listing.items():
        click.echo(f"{name}: {entry['summary']}" + (" (also predicts ratings)" if entry["rating"] else ""))
        for field in entry["hyperparameters"]:
            line = f"  {field['name']} = {field['default']!r}  ({field['type']}) {field['help']}"
            click.echo(line + (f"  [search: {field['search']}]" if field["search"] else ""))
        if not entry["hyperparameters"]:
            click.echo("  (no hyper-parameters)")
