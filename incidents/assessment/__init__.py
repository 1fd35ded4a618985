"""Step 3, assess the damage: the affected audience and the assessment answers."""
