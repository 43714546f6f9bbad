"""`movierec explain` end to end: a tiny IARN trained by `movierec train` on an invented MovieLens 100K
folder (one title with HTML's special characters), its explanation printed and rendered as a page."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from movierec.cli import main
from movierec.cli.common import load_stream
from movierec.models import load_model

GENRES = ["unknown", "Action", "Comedy", "Drama", "Romance", "War"]
TITLES = [
    "Paper Lanterns (1995)",
    "Love & <War> (1996)",  # needs escaping in HTML
    "Clockwork Harbor, The (1997)",
    "Night Train (1989)",
    "Café Mirage (1993)",
    "Rocket Picnic (2000)",
    "Harbor Lights (1991)",
    "Quiet Storm (1998)",
]
TINY = ["embedding_dim=4", "hidden_size=5", "latent_dim=3", "attention_units=4", "max_history=4", "epochs=1"]


def write_ml100k(folder) -> None:
    """16 users rate 6 of 8 movies each, one a day, over 40 days (a temporal split keeps most)."""
    folder.mkdir()
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n", "latin-1")
    items = []
    for k, title in enumerate(TITLES, start=1):
        flags = "|".join("1" if g == k % len(GENRES) or g == 2 * k % len(GENRES) else "0" for g in range(6))
        items.append(f"{k}|{title}|01-Jan-1995||http://example.invalid/{k}|{flags}")
    (folder / "u.item").write_text("\n".join(items) + "\n", "latin-1")
    rng = np.random.default_rng(0)
    rows = []
    for user in range(1, 17):
        days = np.sort(rng.choice(40, 6, replace=False))
        for item, day in zip(rng.choice(len(TITLES), 6, replace=False) + 1, days, strict=True):
            rows.append(f"{user}\t{item}\t{rng.integers(1, 6)}\t{880_000_000 + day * 86_400 + user}\n")
    (folder / "u.data").write_text("".join(rows))


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    write_ml100k(root / "ml-100k")
    hparams = [arg for pair in TINY for arg in ("--set", pair)]
    out = root / "model"
    run("train", "--data", str(root / "ml-100k"), "--model", "iarn", *hparams, "--output", str(out))
    return out


def a_pair(model_dir) -> tuple[str, str]:
    """A user with training events and item 2 (the escaped title), which someone rated in training."""
    stream = load_stream(model_dir)
    model = load_model(model_dir)
    history = model._ready().user_history
    user = int(np.argmax(np.diff(history.indptr)))
    return str(stream.user_ids[user]), "2"


def test_explain_prints_both_histories_sorted_by_gate_with_titles(model_dir):
    user, item = a_pair(model_dir)
    found = json.loads(
        run("explain", "--model-dir", str(model_dir), "--user", user, "--item", item, "--json")
    )
    assert found["item_title"] == "Love & <War>"  # the loader keeps the year apart
    assert found["user_history"] and found["item_history"]
    for side in ("user_history", "item_history"):
        gates = [e["gate"] for e in found[side]]
        assert gates == sorted(gates, reverse=True) and all(0 < g < 1 for g in gates)
    assert all(e["title"] for e in found["user_history"])  # titles from catalogue.json
    low, high = 1.0, 5.0
    assert low <= found["predicted_rating"] <= high

    text = run("explain", "--model-dir", str(model_dir), "--user", user, "--item", item)
    assert "Love & <War>" in text and "sorted by gate, highest first" in text
    assert f"predicted rating {found['predicted_rating']:.2f}" in text
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith(f"user {user}'s rated items")) + 2
    for e, line in zip(found["user_history"], lines[start:], strict=False):
        assert line.split()[0] == f"{e['gate']:.3f}" and e["title"] in line


def test_explain_writes_an_html_page_whose_bars_are_the_gates(model_dir, tmp_path):
    user, item = a_pair(model_dir)
    page = tmp_path / "page" / "why.html"
    found = json.loads(
        run(
            "explain",
            "--model-dir",
            str(model_dir),
            "--user",
            user,
            "--item",
            item,
            "--json",
            "--html",
            str(page),
        )
    )
    text = page.read_text()
    assert "Love &amp; &lt;War&gt;" in text and "<War>" not in text
    widths = [float(w) for w in re.findall(r'class="bar" style="width: ([0-9.]+)%"', text)]
    gates = [e["gate"] for e in found["user_history"] + found["item_history"]]
    np.testing.assert_allclose(widths, [100 * g for g in gates], atol=1e-4)
    assert "<script" not in text and "<style>" in text
    assert not list(page.parent.glob("*.tmp"))  # written atomically: no leftover


def test_explain_names_the_argument_at_fault(model_dir, tmp_path):
    def fails(*args: str) -> str:
        result = CliRunner().invoke(main, ["explain", *args])
        assert result.exit_code == 2, result.output
        return result.output

    user, item = a_pair(model_dir)
    assert "--user" in fails("--model-dir", str(model_dir), "--user", "nobody", "--item", item)
    assert "--item" in fails("--model-dir", str(model_dir), "--user", user, "--item", "999")
    pop = tmp_path / "pop"
    run("train", "--data", str(model_dir.parent / "ml-100k"), "--model", "pop", "--output", str(pop))
    assert "--model-dir" in fails("--model-dir", str(pop), "--user", user, "--item", item)
