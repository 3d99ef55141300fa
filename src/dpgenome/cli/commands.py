"""The registry of CLI commands: each stage module adds its commands here."""

from __future__ import annotations

import click

from dpgenome.cli.audit import audit
from dpgenome.cli.export import export, ledger, publish, verify
from dpgenome.cli.gwas import compare, gwas
from dpgenome.cli.inspect import inspect
from dpgenome.cli.release import demo, release, sweep
from dpgenome.cli.simulate import simulate
from dpgenome.cli.synthesize import synthesize

ALL: list[click.Command] = [
    inspect,
    audit,
    export,
    verify,
    publish,
    ledger,
    simulate,
    gwas,
    compare,
    synthesize,
    release,
    demo,
    sweep,
]
