"""Notification sinks: the formats and transports that carry a change of mood to the tools
people already use."""
