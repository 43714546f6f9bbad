"""The `movierec` command end to end on the real MovieLens 100K."""

import json

import pytest
from click.testing import CliRunner

from movierec.cli import main


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_evaluate_reports_full_catalogue_metrics_with_provenance(ml100k_dir):
    out = run(
        "evaluate",
        "--data",
        str(ml100k_dir),
        "--model",
        "pop",
        "--model",
        "itemknn",
        "--protocol",
        "temporal",
        "--bootstrap",
        "50",
        "--json",
    )
    results = {r["model"]: r for r in json.loads(out)}
    pop, knn = results["pop"], results["itemknn"]
    assert pop["protocol"]["protocol"] == "temporal"
    assert pop["dataset"]["interactions"] == 100_000
    assert pop["dataset"]["checksum"] == knn["dataset"]["checksum"]
    assert pop["evaluation"]["queries"] == knn["evaluation"]["queries"] > 1000
    for metric in ("recall@20", "mrr@20", "ndcg@10", "precision@5", "map", "auc"):
        assert 0.0 <= pop["metrics"][metric] <= 1.0
        low, high = pop["intervals"][metric]
        assert low <= pop["metrics"][metric] <= high
    # next-item queries have one relevant item: recall@K equals the hit rate
    assert pop["metrics"]["recall@20"] == pytest.approx(pop["metrics"]["hit_rate@20"])
    # Item-KNN uses the session context; it must clearly beat popularity
    assert knn["metrics"]["recall@20"] > 1.5 * pop["metrics"]["recall@20"]


def test_leave_last_out_protocol_has_one_query_per_user(ml100k_dir):
    out = run(
        "evaluate",
        "--data",
        str(ml100k_dir),
        "--model",
        "pop",
        "--protocol",
        "leave-last-out",
        "--bootstrap",
        "10",
        "--json",
    )
    (result,) = json.loads(out)
    assert result["protocol"]["protocol"] == "leave-last-out"
    assert result["evaluation"]["queries"] <= 943


def test_train_then_recommend_never_returns_seen_items(ml100k_dir, tmp_path):
    model_dir = tmp_path / "pop"
    run("train", "--data", str(ml100k_dir), "--model", "pop", "--output", str(model_dir))
    assert (model_dir / "recommender.json").exists()
    out = run("recommend", "--model-dir", str(model_dir), "--user", "1", "--user", "42", "-k", "15", "--json")
    recommendations = json.loads(out)
    seen = {}
    for line in (ml100k_dir / "u.data").read_text().splitlines():
        user, item, *_ = line.split("\t")
        seen.setdefault(user, set()).add(item)
    for user in ("1", "42"):
        items = [r["item_id"] for r in recommendations[user]]
        assert len(items) == 15 == len(set(items))
        # everything the user rated is in the saved stream, so nothing rated comes back
        assert not set(items) & seen[user]
        scores = [r["score"] for r in recommendations[user]]
        assert scores == sorted(scores, reverse=True)


def test_recommend_prints_titles_genres_and_a_rating_models_predicted_rating(ml100k_dir, tmp_path):
    model_dir = tmp_path / "mf"
    run("train", "--data", str(ml100k_dir), "--model", "mf", "--set", "epochs=2", "--output", str(model_dir))
    (top,) = json.loads(run("recommend", "--model-dir", str(model_dir), "--user", "1", "-k", "5", "--json"))[
        "1"
    ][:1]
    titles = dict(line.split("|")[:2] for line in (ml100k_dir / "u.item").read_text("latin-1").splitlines())
    assert titles[top["item_id"]].startswith(top["title"]) and top["genres"]  # the year is stripped
    assert 1.0 <= top["predicted_rating"] <= 5.0
    assert top["predicted_rating"] == min(max(top["score"], 1.0), 5.0)
    text = run("recommend", "--model-dir", str(model_dir), "--user", "1", "-k", "5")
    assert f"  1. {top['item_id']}  {top['title']} [" in text and "predicted rating" in text


def test_unknown_user_and_hyper_parameter_are_clear_errors(ml100k_dir, tmp_path):
    result = CliRunner().invoke(
        main, ["evaluate", "--data", str(ml100k_dir), "--model", "pop", "--set", "epochs=3"]
    )
    assert result.exit_code != 0
    assert "no selected model takes epochs" in result.output


def test_missing_dataset_says_where_to_put_it(tmp_path):
    result = CliRunner().invoke(main, ["data", "inspect", "--data", "ml-1m", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "ml-1m" in result.output and str(tmp_path) in result.output


def test_inspect_counts_the_real_files(ml100k_dir):
    summary = json.loads(run("data", "inspect", "--data", str(ml100k_dir), "--json"))
    assert (summary["interactions"], summary["users"], summary["items"]) == (100_000, 943, 1682)


def test_repeat_varies_split_and_model_seeds_and_reports_both_spreads(ml100k_dir):
    out = run(
        "evaluate",
        "--data",
        str(ml100k_dir),
        "--model",
        "bpr-mf",
        "--versus",
        "pop",
        "--set",
        "epochs=1",
        "--protocol",
        "temporal",
        "--repeat",
        "2",
        "--bootstrap",
        "50",
        "--json",
    )
    bpr, pop = json.loads(out)
    # Pop is not seeded: fitted once per split; its spread is the split's alone
    assert [(r["split_seed"], r["seed"]) for r in pop["runs"]] == [(0, None), (1, None)]
    assert pop["spread"]["split_seed"]["recall@20"] > 0 and "recall@20" not in pop["spread"]["model_seed"]
    assert [(r["split_seed"], r["seed"]) for r in bpr["runs"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    recalls = [r["metrics"]["recall@20"] for r in bpr["runs"]]
    assert len(set(recalls)) == 4
    assert bpr["metrics"]["recall@20"] == pytest.approx(sum(recalls) / 4)
    assert bpr["spread"]["model_seed"]["recall@20"] > 0 and bpr["spread"]["split_seed"]["recall@20"] > 0
    low, high = bpr["intervals"]["recall@20"]
    assert low < bpr["metrics"]["recall@20"] < high
    paired = bpr["versus"]["paired_difference"]["recall@20"]
    assert bpr["versus"]["model"] == "pop"
    assert paired["difference"] == pytest.approx(bpr["metrics"]["recall@20"] - pop["metrics"]["recall@20"])
    assert paired["low"] <= paired["difference"] <= paired["high"]
    assert bpr["metrics_std"]["recall@20"] > 0


def test_the_random_protocol_takes_the_seed_and_test_fraction():
    from movierec.cli.common import split_params

    assert split_params("random", 0.3, 7) == {"test_fraction": 0.3, "seed": 7}
    assert split_params("leave-last-out", 0.3, 7) == {}
