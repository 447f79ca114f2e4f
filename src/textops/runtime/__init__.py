"""runtime: the processes textops runs beside its stages: the temporary Prefect server, the training slot."""
