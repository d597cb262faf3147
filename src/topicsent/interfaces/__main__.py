"""``python -m topicsent.interfaces``: the CLI without the installed script."""

from topicsent.interfaces.cli import main

main()
