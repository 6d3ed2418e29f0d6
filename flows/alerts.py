"""Alerts for the data team: `python flows/alerts.py` (run by `make deploy`) creates or updates
two automations on the Prefect server named by PREFECT_API_URL:

- "sparkify: a run failed": a run of a deployment tagged sparkify ended Failed, Crashed or
  TimedOut;
- "sparkify: the daily load did not complete": no run of sparkify-etl/daily completed (in any of
  its Completed states) within 26 hours.

Each sends a notification through the block named `sparkify-alerts`, of any notification type
(Slack, Microsoft Teams, a custom webhook, email through Apprise, ...). With
SPARKIFY_ALERT_SLACK_WEBHOOK_URL set, the command saves a Slack webhook block of that name first
(the URL is kept as a secret). Without any such block the automations are created paused, doing
nothing, and the command says how to give them one.
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from typing import Any
from uuid import UUID

from tasks.common.cli import add_debug_argument, command
from tasks.run.outcome import NOTHING_TO_LOAD, WITH_MISSING_DAYS, WITH_REJECTS

ALERT_BLOCK = "sparkify-alerts"
SLACK_VARIABLE = "SPARKIFY_ALERT_SLACK_WEBHOOK_URL"
FAILED = "sparkify: a run failed"
NOT_COMPLETED = "sparkify: the daily load did not complete"
DAILY = "sparkify-etl/daily"
# A daily run's window: its day, and two hours to be late or retried.
DAILY_WITHIN = timedelta(hours=26)
COMPLETED_NAMES = ("Completed", WITH_REJECTS, WITH_MISSING_DAYS, NOTHING_TO_LOAD)


def notification_block(client: Any) -> UUID | None:
    """The id of the notification block named ALERT_BLOCK (saved first from the Slack webhook
    URL in the environment, if given), or None when there is none."""
    url = os.environ.get(SLACK_VARIABLE, "").strip()
    if url:
        from prefect.blocks.notifications import SlackWebhook

        return SlackWebhook(url=url).save(ALERT_BLOCK, overwrite=True)
    found = [b for b in client.read_block_documents() if b.name == ALERT_BLOCK]
    return found[0].id if found else None


def automations(block_id: UUID | None, daily_id: UUID) -> list[Any]:
    """The two automations, notifying through the block (paused, doing nothing, without one)."""
    from prefect.events.actions import DoNothing, SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    def action(subject: str, body: str) -> Any:
        if block_id is None:
            return DoNothing()
        return SendNotification(block_document_id=block_id, subject=subject, body=body)

    failed = AutomationCore(
        name=FAILED,
        description="A run of a sparkify deployment ended Failed, Crashed or TimedOut.",
        enabled=block_id is not None,
        trigger=EventTrigger(
            expect={f"prefect.flow-run.{s}" for s in ("Failed", "Crashed", "TimedOut")},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": "prefect.tag.sparkify"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            action(
                "Sparkify: {{ flow_run.name }} {{ flow_run.state.name }}",
                "{{ flow.name }} run {{ flow_run.name }} ended {{ flow_run.state.name }}: "
                "{{ flow_run.state.message }}",
            )
        ],
    )
    not_completed = AutomationCore(
        name=NOT_COMPLETED,
        description=f"No run of {DAILY} completed within 26 hours.",
        enabled=block_id is not None,
        trigger=EventTrigger(
            expect={f"prefect.flow-run.{name}" for name in COMPLETED_NAMES},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": f"prefect.deployment.{daily_id}"},
            posture=Posture.Proactive,
            threshold=1,
            within=DAILY_WITHIN,
        ),
        actions=[
            action(
                f"Sparkify: no {DAILY} run completed in 26 hours",
                f"No run of {DAILY} completed in the last 26 hours: look at its runs in the "
                "Prefect UI, and at the worker.",
            )
        ],
    )
    return [failed, not_completed]


def ensure_alerts() -> tuple[list[str], bool]:
    """Create or update the automations; their names, and whether they notify anyone."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        block_id = notification_block(client)
        daily = client.read_deployment_by_name(DAILY)
        wanted = automations(block_id, daily.id)
        for automation in wanted:
            existing = client.read_automations_by_name(automation.name)
            if existing:
                client.update_automation(existing[0].id, automation)
            else:
                client.create_automation(automation)
    return [a.name for a in wanted], block_id is not None


@command("alerts")
def main(argv: list[str] | None = None) -> int:
    """Create or update the alert automations on the Prefect server of PREFECT_API_URL."""
    parser = argparse.ArgumentParser(description="Alerts of failed and missing loads.")
    add_debug_argument(parser)
    parser.parse_args(argv)
    names, notifying = ensure_alerts()
    print(f"alerts: {', '.join(names)}")
    if not notifying:
        print(
            f"alerts: paused, no notification block named {ALERT_BLOCK}: rerun make deploy with "
            f"{SLACK_VARIABLE}=https://hooks.slack.com/..., or save any notification block "
            f"under that name in the UI (Blocks), then rerun"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
