"""`python -m vpack.cli`: the command, as the installed `vpack` runs it."""

from vpack.cli.commands import main

main()
