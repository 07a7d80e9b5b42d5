"""The event bus: one interface, three backends (embedded SQLite log, NATS JetStream, Kafka).

See :mod:`strato.bus.base` for the contract every backend keeps; ``open_bus`` picks one
from a URL (``STRATO_BUS_URL``).
"""

from strato.bus.base import Bus, Message, Subscription
from strato.bus.factory import open_bus

__all__ = ["Bus", "Message", "Subscription", "open_bus"]
