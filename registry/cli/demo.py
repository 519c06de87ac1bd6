"""``model-registry demo``: the README's main job, on the configured (by default, embedded) registry."""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.context import CliContext


@click.command()
@click.option("--reference-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of example models with MANIFEST.json (default: the bundled registry/demo_models).")
@click.option("--publisher", default="examples", show_default=True, help="Publisher to publish the examples under.")
@click.pass_context
def demo(ctx: click.Context, reference_dir: Path | None, publisher: str) -> None:
    """Publish the bundled example models, load each back by handle and compare with the reference outputs.

    Every model is published from its directory and from its .tar.gz, loaded in
    mode tf2 (TF2 SavedModels also in mode tf1, in a tf.Graph) and checked against
    the outputs TensorFlow 2.15 + tensorflow_hub 0.15 computed; then the catalog
    and the compatibility matrix are printed.
    """
    from registry.cli.context import CliError
    from registry.cli.compat import compat
    from registry.cli.models import list_
    from registry.demo import ATOL, REFERENCE_DIR, run_demo

    obj: CliContext = ctx.find_object(CliContext)
    registry = obj.registry
    click.echo(f"registry: {registry!r}")
    report = run_demo(registry, reference_dir or REFERENCE_DIR, publisher=publisher, echo=click.echo)

    click.echo("")
    click.echo("catalog:")
    ctx.invoke(list_, publisher=None, as_json=False)
    click.echo("")
    click.echo("compatibility matrix:")
    ctx.invoke(compat, format_=None, as_json=False)

    mismatches = [c for c in report.comparisons if not c.ok]
    click.echo("")
    click.echo(f"{len(report.published)} versions published, {len(report.comparisons)} outputs compared "
               f"(atol {ATOL:g}): {len(mismatches)} mismatched, {len(report.failures)} examples failed")
    if not report.ok:
        problems = [f"{f[0]}: {f[1]}" for f in report.failures[:1]] + [
            f"{c.handle} mode {c.mode} {c.signature}:{c.output} differs by {c.max_abs_diff:.1e}" for c in mismatches[:1]]
        raise CliError(f"the demo did not reproduce the reference outputs ({'; '.join(problems) or 'nothing ran'})")


COMMANDS = (demo,)
