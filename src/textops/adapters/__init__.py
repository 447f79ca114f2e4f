"""adapters: the one place that talks to MLflow's store, git, DVC, file locks and the log files."""
