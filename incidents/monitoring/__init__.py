"""Step 6, proceed with caution: deliverability after the incident."""
