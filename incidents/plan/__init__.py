"""Step 4, make a plan: plan versions, sign-off and the breach clock."""
