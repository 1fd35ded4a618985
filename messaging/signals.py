"""Signals messaging sends for the apps above it (they connect; messaging imports none)."""

from django.dispatch import Signal

# Sent inside the transaction that records a campaign stop's final outcome, so a receiver's
# writes (the incident timeline) commit or roll back with it.
# Arguments: stop (CampaignStop, final), requested_for (the object that asked, or None).
campaign_stop_settled = Signal()

# The sandbox ESP's "webhook": sent after each batch it accepts, with the synthetic tracking
# events (messaging.esp.base.TrackedEvent) a real ESP would post later. Deliverability stores
# them as if its webhook had received them, so the demo tells the whole story offline.
# Arguments: events (list[TrackedEvent]).
sandbox_events_emitted = Signal()
