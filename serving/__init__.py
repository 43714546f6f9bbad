"""The SavedModel export TF Serving loads (`export_for_serving`, signatures of `ServingModule`) and
(roadmap) the REST/gRPC client."""

from movierec.serving.export import HistoryScorable, ServingModule, export_for_serving

__all__ = ["HistoryScorable", "ServingModule", "export_for_serving"]
