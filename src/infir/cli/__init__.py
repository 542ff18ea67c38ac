"""`infir` command line: parses arguments, calls one library function, prints. Nothing else.

Each capability registers its commands from its own module here, so the CLI stays thin.
"""

from __future__ import annotations

import typer

from infir.cli import demo, evaluate, search, synth, train

app = typer.Typer(
    name="infir",
    help="Instruction-following retrieval: synth, train, eval, index/search/serve.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

for module in (synth, train, evaluate, search, demo):
    module.register(app)


def main() -> None:
    app()
