"""Moments of the response that later steps add their own rules to, without the core
importing them (the learn step asks for its post-mortem when an incident closes)."""

from django.dispatch import Signal

# Sent inside incident_close's transaction, before the incident is closed, with
# incident, actor and postmortem_skip_reason. A receiver refuses by raising
# ValidationError; the exception reaches the caller and nothing is closed.
incident_closing = Signal()

# Sent inside the transaction of a declaration or a change of an incident's details (kind,
# severity, personal data...), with incident, actor and reason: what must be signed follows
# (incidents.plan.signoff keeps its requirements, which only ratchet up).
incident_details_changed = Signal()
