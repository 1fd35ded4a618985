"""Signals messaging sends for the apps above it (they connect; messaging imports none)."""

from django.dispatch import Signal

# Sent inside the transaction that records a campaign stop's final outcome, so a receiver's
# writes (the incident timeline) commit or roll back with it.
# Arguments: stop (CampaignStop, final), requested_for (the object that asked, or None).
campaign_stop_settled = Signal()
