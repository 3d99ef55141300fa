"""The registry of CLI commands: each stage module adds its commands here."""

from __future__ import annotations

import click

from dpgenome.cli.inspect import inspect

ALL: list[click.Command] = [inspect]
