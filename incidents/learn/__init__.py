"""The learn phase: the post-mortem and what the playbook takes from it."""
