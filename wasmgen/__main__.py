"""Run the CLI as `python -m wasmgen`."""

from wasmgen.cli import main

main()
