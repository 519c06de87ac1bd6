"""``model-registry serve``: the catalog server (JSON API, tfhub.dev-style model URLs, web pages)."""

from __future__ import annotations

import copy
import sys

import click

from registry.cli.context import CliContext, pass_context


def logging_config(level: str) -> dict:
    """uvicorn's logging, plus the server's own access log (uvicorn's is off: it would print raw query strings)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["plain"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["registry"] = {"class": "logging.StreamHandler", "formatter": "plain",
                                      "stream": "ext://sys.stderr"}
    config["loggers"]["registry.server"] = {"handlers": ["registry"], "level": level.upper(), "propagate": False}
    return config


def ensure_port_free(host: str, port: int) -> None:
    """Fail with one line if ``host:port`` cannot be listened on (another server has it), before any work.

    Binds as uvicorn will (``SO_REUSEADDR``, so a port in TIME_WAIT counts as free) and lets go at once; a
    server that takes the port in between still fails, with uvicorn's message.
    """
    import socket

    from registry.cli.context import CliError

    if port == 0:
        return  # any free port
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as error:
        reason = "is in use (another server is listening there?)" if getattr(error, "errno", None) == 98 else \
            f"cannot be listened on ({error.strerror or error})"
        raise CliError(f"port {port} on {host} {reason}: stop that server or choose another port with --port "
                       f"(make demo PORT=N)") from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (each is stateless; run more, or more servers, behind a load balancer).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Serve HTTPS with this certificate (PEM; the chain after it), e.g. one for tfhub.dev when that "
                   "host name points at this server.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The certificate's private key (PEM).")
@pass_context
def serve(obj: CliContext, host: str, port: int, workers: int, log_level: str, ssl_certfile: str | None,
          ssl_keyfile: str | None) -> None:
    """Serve the configured catalog and storage over HTTP (HTTPS with --ssl-certfile) until Ctrl-C.

    Clients point MODEL_REGISTRY_URL at it; the unmodified tensorflow_hub client
    loads http://HOST:PORT/PUBLISHER/MODEL/VERSION; browsers get the web catalog.
    """
    import uvicorn

    from registry.cli.context import CliError
    from registry.server.app import server_registry
    from registry.server.downloads import check_settings as check_downloads
    from registry.server.settings import ServerSettings

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise CliError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    scheme = "https" if ssl_certfile else "http"
    if ssl_certfile and ssl_keyfile:
        check_certificate(ssl_certfile, ssl_keyfile)
    ensure_port_free(host, port)
    registry = server_registry()
    registry.catalog.ping()  # a wrong database URL fails here, once, not in every worker
    check_downloads(registry.store, ServerSettings.from_settings(registry.settings))  # ... and a delivery setting
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"Serving {registry.catalog.identity} (artifacts in {registry.settings.storage_url}) at "
               f"{scheme}://{shown_host}:{port}/ with {workers} worker{'s' if workers > 1 else ''}; Ctrl-C stops it",
               err=True)
    sys.stderr.flush()
    uvicorn.run("registry.server.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_config=logging_config(log_level), log_level=log_level,
                proxy_headers=True, forwarded_allow_ips="127.0.0.1", timeout_graceful_shutdown=10,
                ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


def check_certificate(certfile: str, keyfile: str) -> None:
    """Fail with one line, before any work, when the certificate and key cannot serve HTTPS (not PEM, or a key
    that is not the certificate's): uvicorn would otherwise fail in each worker with a traceback."""
    import ssl

    from registry.cli.context import CliError

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as error:
        raise CliError(f"--ssl-certfile {certfile} with --ssl-keyfile {keyfile} cannot serve HTTPS: "
                       f"{getattr(error, 'reason', None) or error}") from None


COMMANDS = (serve,)
