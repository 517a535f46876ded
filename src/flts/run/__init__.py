"""The `flts run` driver: starts the services, watches the run's topics, reports (table, plot)."""
