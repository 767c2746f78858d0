"""The configuration: loader.py reads and validates the file (schemas/), checks.py warns about
likely mistakes, tuning.py reads the SLA_CONNECTOR_* tuning variables from the environment."""
