"""Pages of step 5: the composer (compose) and the send panel (send)."""
