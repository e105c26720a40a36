"""Collection scoring: training, the model registry core, batch scoring and drift."""
