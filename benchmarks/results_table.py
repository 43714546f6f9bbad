"""The README's benchmark table from `movierec benchmark`'s results.json (so it is generated, not
copied by hand): prints the Markdown table, and with `--readme README.md` replaces the table between
the README's `<!-- benchmark-table:start ... -->` and `<!-- benchmark-table:end -->` markers.

    scripts/run python benchmarks/results_table.py runs/bench/results.json
    scripts/run python benchmarks/results_table.py runs/bench/results.json --readme README.md
"""

from __future__ import annotations

import json

import click

from movierec import storage
from movierec.evaluation.report import TABLE_END, TABLE_START, markdown_table, table_caption


def readme_block(results: dict) -> str:
    """The generated block: the markers, the table and its caption."""
    return f"{TABLE_START}\n{markdown_table(results)}\n{table_caption(results)}\n{TABLE_END}"


def replace_block(text: str, block: str) -> str:
    """`text` with the part between the markers (included) replaced by `block`; ValueError naming the
    missing marker otherwise."""
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        missing = TABLE_START if start < 0 else TABLE_END
        raise ValueError(f"the README has no {missing!r} marker (after the start marker)")
    return text[:start] + block + text[end + len(TABLE_END) :]


@click.command()
@click.argument("results_path", metavar="RESULTS_JSON")
@click.option("--readme", help="Also write the table into this README between the benchmark-table markers.")
def main(results_path: str, readme: str | None) -> None:
    results = json.loads(storage.read_text(results_path))
    click.echo(markdown_table(results), nl=False)
    if readme:
        try:
            text = replace_block(storage.read_text(readme), readme_block(results))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--readme") from error
        storage.write_text(readme, text)
        click.echo(f"updated the table in {readme}", err=True)


if __name__ == "__main__":
    main()
