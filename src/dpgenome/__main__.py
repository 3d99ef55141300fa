"""``python -m dpgenome``: the ``dpgenome`` command."""

from dpgenome.cli import main

main(prog_name="dpgenome")
