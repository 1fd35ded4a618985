"""Step 2, put out the fire: pause or cancel the incident's campaigns at their ESPs."""
