"""The services the daemon runs for its user: one list, so a new scheduler is one line here
(the daemon itself never changes for it)."""

from __future__ import annotations

from .components import Component
from .config import DaemonConfig
from .live import live_component
from .presence import PresenceHeartbeat
from .private_inbox import PrivateInbox
from .routes_media import SfuStatus

__all__ = ["hosted_components"]


def hosted_components(config: DaemonConfig) -> list[Component]:
    """The components ``daemon run`` starts, in order, for ``config``."""
    from .certificates import TrainingRecords
    from .reminders import ReminderScheduler

    components: list[Component] = [ReminderScheduler(), TrainingRecords()]
    components.append(SfuStatus())
    components.append(live_component(config))
    components.append(PrivateInbox())
    components.append(PresenceHeartbeat())
    return components
