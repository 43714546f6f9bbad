"""Export for TF Serving and (roadmap) the REST/gRPC client."""
