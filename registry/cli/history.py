"""``model-registry audit`` and ``webhook``: what happened, and who is told.

Each works on the catalog directly (MODEL_REGISTRY_DATABASE_URL) or through a
server in client mode (MODEL_REGISTRY_URL plus an admin MODEL_REGISTRY_TOKEN for
the audit log and webhooks). ``webhook add`` prints the hook's signing secret
alone on stdout — ``SECRET=$(model-registry webhook add ...)`` — once; everything
else goes to stderr.
"""

from __future__ import annotations

from datetime import datetime

import click

from registry.cli.context import CliContext, json_option, pass_context, wants_json
from registry.cli.output import echo_json, table, timestamp

#: What --since/--until accept: ISO 8601, a date alone, or with a time (local time unless a zone is given).
MOMENT = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z",
                                 "%Y-%m-%dT%H:%M:%S.%f%z"])


@click.command()
@click.option("--since", type=MOMENT, default=None, help="Entries at or after this time (local unless a zone).")
@click.option("--until", type=MOMENT, default=None, help="Entries before this time.")
@click.option("--model", default=None, metavar="PUBLISHER[/MODEL]", help="Changes to this model (or publisher).")
@click.option("--actor", default=None, help="Changes by this actor (a token's name, or user@host).")
@click.option("--action", default=None, help="An action (alias.moved) or a family (alias, version, token, webhook).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Entries per page.")
@click.option("--after", default=None, help="Continue after this entry id (the last one shown).")
@json_option
@pass_context
def audit(obj: CliContext, since: datetime | None, until: datetime | None, model: str | None, actor: str | None,
          action: str | None, limit: int, after: str | None, as_json: bool) -> None:
    """The audit log, newest first: every change to the catalog, who made it, and what it was before and after."""
    entries = obj.registry.audit(since=since, until=until, model=model, actor=actor, action=action, limit=limit,
                                 after=after)
    if wants_json(obj, as_json):
        echo_json([entry.model_dump(mode="json") for entry in entries])
        return
    if not entries:
        click.echo("no audit entries match", err=True)
        return
    click.echo(table(["ID", "TIME (UTC)", "ACTOR", "ACTION", "SUBJECT", "CHANGE"],
                     [(e.id, timestamp(e.at), e.actor, e.action, e.subject, _change(e.before, e.after))
                      for e in entries]))
    if len(entries) == limit:
        click.echo(f"more: --after {entries[-1].id}", err=True)


def _change(before: dict | None, after: dict | None) -> str:
    def name(state: dict | None) -> str:
        if state is None:
            return "-"
        return str(state.get("handle") or state.get("url") or state.get("name") or "")
    return f"{name(before)} -> {name(after)}" if before and after and name(before) != name(after) else \
        name(after if after is not None else before)


@click.group()
def webhook() -> None:
    """Tell other systems of new versions, deletions and alias moves (signed Standard Webhooks)."""


@webhook.command()
@click.argument("url")
@click.option("--events", required=True, metavar="EVENT[,EVENT...]",
              help="version.published, version.deleted, alias.set, alias.moved, alias.removed.")
@click.option("--publisher", default=None, help="Only changes to this publisher's models.")
@pass_context
def add(obj: CliContext, url: str, events: str, publisher: str | None) -> None:
    """Add a webhook and print its signing secret (alone, on stdout; shown this once)."""
    secret, hook = obj.registry.webhooks.add(url, events=events.split(","), publisher=publisher)
    scope = f" for publisher {hook.publisher}" if hook.publisher else ""
    click.echo(f"added webhook {hook.id} -> {hook.url} ({', '.join(hook.events)}){scope}; its signing secret is "
               f"shown once, below", err=True)
    click.echo(secret)


@webhook.command("list")
@json_option
@pass_context
def list_(obj: CliContext, as_json: bool) -> None:
    """The webhooks, whether each is enabled (and if not, why), and how many messages wait for it."""
    hooks = obj.registry.webhooks.list()
    if wants_json(obj, as_json):
        echo_json([hook.model_dump(mode="json") for hook in hooks])
        return
    if not hooks:
        click.echo("no webhooks; add one with `model-registry webhook add URL --events ...`", err=True)
        return
    click.echo(table(["ID", "URL", "EVENTS", "PUBLISHER", "STATE", "PENDING"],
                     [(h.id, h.url, ",".join(h.events), h.publisher or "*",
                       "enabled" if h.enabled else f"disabled: {h.disabled_reason}", h.pending) for h in hooks]))


@webhook.command()
@click.argument("hook_id", type=int, metavar="ID")
@pass_context
def remove(obj: CliContext, hook_id: int) -> None:
    """Remove webhook ID; messages still waiting for it are not sent."""
    hook = obj.registry.webhooks.remove(hook_id)
    click.echo(f"removed webhook {hook.id} ({hook.url})")


@webhook.command()
@click.argument("hook_id", type=int, metavar="ID")
@pass_context
def enable(obj: CliContext, hook_id: int) -> None:
    """Enable webhook ID after failures disabled it; what waits for it is sent again."""
    hook = obj.registry.webhooks.enable(hook_id)
    click.echo(f"webhook {hook.id} is enabled ({hook.pending} messages waiting)")


@webhook.command()
@click.argument("hook_id", type=int, metavar="ID")
@pass_context
def test(obj: CliContext, hook_id: int) -> None:
    """Queue a webhook.test message to webhook ID; a running server sends it. Prints its webhook-id."""
    click.echo(obj.registry.webhooks.test(hook_id))


@webhook.command()
@click.argument("hook_id", type=int, metavar="ID")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
@pass_context
def deliveries(obj: CliContext, hook_id: int, limit: int, as_json: bool) -> None:
    """Webhook ID's delivery log, newest first: each attempt, its answer, and the message's state."""
    attempts = obj.registry.webhooks.attempts(hook_id, limit=limit)
    if wants_json(obj, as_json):
        echo_json([attempt.model_dump(mode="json") for attempt in attempts])
        return
    click.echo(table(["TIME (UTC)", "WEBHOOK-ID", "EVENT", "TRY", "ANSWER", "MS", "STATE"],
                     [(timestamp(a.at), a.message_id, a.event, a.attempt, a.status_code or a.error, a.duration_ms,
                       a.delivery_status) for a in attempts]))


COMMANDS = (audit, webhook)
