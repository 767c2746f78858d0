"""The `sla-connector` command: main.py parses and dispatches; one module per larger command."""
