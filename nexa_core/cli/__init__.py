"""The `nexa` command line: one module per group of commands, all calling the same core functions as the
Dagster assets. `nexa_core.cli.main:main` is the console script."""
