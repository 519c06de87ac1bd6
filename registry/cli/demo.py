"""``model-registry demo``: the README's main job, on the configured (by default, embedded) registry."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import click

from registry.cli.context import CliContext
from registry.handles import COMPRESSED_QUERY


@click.command()
@click.option("--reference-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of example models with MANIFEST.json (default: the bundled registry/demo_models).")
@click.option("--publisher", default="examples", show_default=True, help="Publisher to publish the examples under.")
@click.option("--serve", "serve_after", is_flag=True,
              help="Then serve the catalog (model-registry serve) until Ctrl-C, printing lines to try.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port for --serve.")
@click.pass_context
def demo(ctx: click.Context, reference_dir: Path | None, publisher: str, serve_after: bool, port: int) -> None:
    """Publish the bundled example models, load each back by handle and compare with the reference outputs.

    Every model is published once, from its directory (a model already published with
    the same content is reused, so a second run changes nothing), loaded in each mode
    its format's adapter runs generically (mode tf1 in a tf.Graph) and checked against
    the outputs TensorFlow 2.15 + tensorflow_hub 0.15 computed; then the catalog and
    the compatibility matrix are printed. With --serve, a busy --port is reported
    before anything is published.
    """
    from registry.cli.compat import compat
    from registry.cli.context import CliError
    from registry.cli.models import list_
    from registry.cli.serve import ensure_port_free
    from registry.demo import ATOL, REFERENCE_DIR, run_demo

    if serve_after:
        ensure_port_free("127.0.0.1", port)
    obj = ctx.ensure_object(CliContext)  # as pass_context does (ensure=True)
    registry = obj.registry
    click.echo(f"registry: {registry!r}")
    # A catalog the demo cannot use (a schema behind the code, a read-only file...) is one error line, said once,
    # not one failure per bundled model.
    registry.catalog.ping()
    report = run_demo(registry, reference_dir or REFERENCE_DIR, publisher=publisher, echo=click.echo)

    click.echo("")
    click.echo("catalog:")
    ctx.invoke(list_, publisher=None, as_json=False)
    click.echo("")
    click.echo("compatibility matrix:")
    ctx.invoke(compat, format_=None, as_json=False)

    mismatches = [c for c in report.comparisons if not c.ok]
    click.echo("")
    click.echo(f"{len(report.published) - len(report.reused)} versions published ({len(report.reused)} already "
               f"there), {len(report.comparisons)} outputs compared "
               f"(atol {ATOL:g}): {len(mismatches)} mismatched, {len(report.failures)} examples failed")
    if not report.ok:
        problems = [f"{f[0]}: {f[1]}" for f in report.failures[:1]] + [
            f"{c.handle} mode {c.mode} {c.signature}:{c.output} differs by {c.max_abs_diff:.1e}"
            for c in mismatches[:1]]
        raise CliError(f"the demo did not reproduce the reference outputs ({'; '.join(problems) or 'nothing ran'})")
    if serve_after:
        _serve(ctx, report.formats, port)


def _serve(ctx: click.Context, formats: dict[str, str], port: int) -> None:
    """Start the server on what the demo published, telling the user how to read it with other tools.

    ``formats`` maps each published handle to its format; the lines to try use the
    first handle of each format, so every format the demo published is shown.
    """
    from registry.cli.serve import serve

    base = f"http://127.0.0.1:{port}"
    first_of_format: dict[str, str] = {}
    for handle, format in formats.items():
        first_of_format.setdefault(format, handle)
    handles = list(first_of_format.values())
    first, last = handles[0], handles[-1]
    python = shlex.quote(sys.executable)  # the interpreter running this demo: it has the registry installed
    click.echo("")
    click.echo(f"The catalog is served at {base}/ (web pages, JSON API at /api/v1, tfhub.dev-style model URLs). Try:")
    if shutil.which("curl"):
        click.echo(f"  curl -L '{base}/{first}?{COMPRESSED_QUERY}' | tar tz")
    hub_client = hub_client_python()
    if hub_client is not None:
        hub_line = f"import tensorflow_hub as hub; print(hub.load(\"{base}/{last}\"))"
        click.echo(f"  {shlex.quote(str(hub_client))} -c '{hub_line}'  # the unmodified tensorflow_hub 0.16.1 client")
    click.echo(f"  {python} -c 'import registry; print(registry.load(\"{base}/{last}\", mode=\"tf2\"))'"
               f"  # the model URL, read as tensorflow_hub's hub.load reads it")
    click.echo(f"  MODEL_REGISTRY_URL={base} {python} -c 'import registry; print(registry.get_version(\"{last}\"))'")
    click.echo("Ctrl-C stops it.")
    ctx.invoke(serve, host="127.0.0.1", port=port, workers=1, log_level="warning")


def hub_client_python() -> Path | None:
    """The interpreter of the tensorflow_hub client environment ``make test`` builds in a clone (``.hubclient/``).

    Named in the lines to try only when it exists: the project's own environment has no tensorflow_hub.
    """
    import registry

    stack = Path(registry.__file__).resolve().parent.parent / ".hubclient"
    python = stack / "venv" / "bin" / "python"
    # tests/refstack.py writes its completion record last: a half-built environment is not named
    return python if python.is_file() and (stack / "refstack-complete.json").is_file() else None


COMMANDS = (demo,)
