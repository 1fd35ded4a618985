"""Pages of the learn step: the post-mortem (postmortem) and the managers' crisis summary
(summary)."""
