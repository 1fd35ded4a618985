"""Step 5, inform and apologise: the apology's content, linter and sending."""
