"""LSIC's learning curves (the paper's figure 3): G's and D's Precision@5 and NDCG@5 on the held-out
latest training events after pre-training and after every adversarial epoch, as a PNG."""

from __future__ import annotations

import io
from typing import Any

from movierec import storage


def curve_points(log: dict[str, Any]) -> list[dict[str, Any]]:
    """The held-out run's entries that carry a curve point (empty without a held-out run)."""
    return [e for e in log.get("selection") or [] if "g_precision_at_5" in e]


def plot_curves(log: dict[str, Any], path: str) -> bool:
    """Writes the curves to `path` (any filesystem); False (nothing written) without curve points."""
    points = curve_points(log)
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [e["epoch"] - points[0]["epoch"] for e in points]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, metric, title in zip(axes, ("precision", "ndcg"), ("Precision@5", "NDCG@5"), strict=True):
        for player in ("g", "d"):
            values = [e[f"{player}_{metric}_at_5"] for e in points]
            axis.plot(epochs, values, marker="o", label=player.upper())
        axis.set_xlabel("adversarial epoch (0 = after pre-training)")
        axis.set_title(f"{title}, held-out training tail")
        axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    storage.write_bytes(path, buffer.getvalue())
    return True
