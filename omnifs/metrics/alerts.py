"""The daemon's own evaluation of ``[alerts]``: fire, resolve, log, webhook.

So a user without Prometheus still gets alerts. Each evaluation gives, per
alert (a threshold, and for per-store ones the store), the value measured;
an alert fires once its condition has held for its ``for`` time (the same as
the generated rules': ``provider_down`` seconds for a store down,
``for_seconds`` for the others) and resolves when it no longer holds. Both
are logged and POSTed as JSON to ``[alerts] webhook``, with a timeout and a
few retries, from a thread so evaluation never waits on a webhook.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from omnifs.metrics_config import AlertSettings

log = logging.getLogger("omnifs.alerts")

#: thresholds whose condition is "below", not "above"
_BELOW = {"cache_hit_ratio"}


@dataclass
class Event:
    state: str  # "firing" or "resolved"
    alert: str  # the threshold's name
    subject: str  # the store, or "" for the whole filesystem
    value: float
    threshold: float
    at: float

    def as_dict(self) -> dict:
        return {"state": self.state, "alert": self.alert, "provider": self.subject or None,
                "value": self.value, "threshold": self.threshold, "at": self.at}


def breached(alert: str, value: float, threshold: float) -> bool:
    if alert == "provider_down":
        return value >= 1.0  # 1 = down
    return value < threshold if alert in _BELOW else value > threshold


class AlertBook:
    """Which alerts hold, since when, and which fired."""

    def __init__(self, settings: AlertSettings, *, clock=time.time):
        self.settings = settings
        self.clock = clock
        self._since: dict[tuple[str, str], float] = {}
        self.firing: dict[tuple[str, str], Event] = {}

    def _wait(self, alert: str) -> float:
        if alert == "provider_down":
            return self.settings.provider_down or 0.0
        return self.settings.for_seconds

    def update(self, values: dict[tuple[str, str], float]) -> list[Event]:
        """``values``: (alert, subject) -> value now; returns the alerts that fired or
        resolved. An alert with no value this time keeps its state."""
        now = self.clock()
        thresholds = self.settings.thresholds()
        events = []
        for (alert, subject), value in values.items():
            if alert not in thresholds:
                continue
            key = (alert, subject)
            x = thresholds[alert]
            if breached(alert, value, x):
                since = self._since.setdefault(key, now)
                if key not in self.firing and now - since >= self._wait(alert):
                    self.firing[key] = Event("firing", alert, subject, value, x, now)
                    events.append(self.firing[key])
            else:
                self._since.pop(key, None)
                if self.firing.pop(key, None) is not None:
                    events.append(Event("resolved", alert, subject, value, x, now))
        return events


def announce(events: list[Event], settings: AlertSettings) -> None:
    """Log each event; POST them to the webhook (in a thread) when one is configured."""
    for e in events:
        where = f" on {e.subject}" if e.subject else ""
        log.warning("alert %s%s: %s (value %g, threshold %g)", e.alert, where, e.state,
                    e.value, e.threshold)
    if events and settings.webhook:
        threading.Thread(target=post, args=(settings, [e.as_dict() for e in events]),
                         name="omnifs-webhook", daemon=True).start()


def post(settings: AlertSettings, payload: list[dict]) -> bool:
    """POST ``payload`` to the webhook; retried with backoff; True once it was accepted."""
    body = json.dumps({"alerts": payload}).encode()
    assert settings.webhook is not None
    for attempt in range(settings.webhook_retries + 1):
        req = urllib.request.Request(settings.webhook, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=settings.webhook_timeout) as r:
                if 200 <= r.status < 300:
                    return True
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            log.info("alert webhook: attempt %d failed: %s", attempt + 1, reason)
        time.sleep(min(0.2 * 2 ** attempt, 5.0))
    log.warning("alert webhook: gave up after %d attempts", settings.webhook_retries + 1)
    return False
