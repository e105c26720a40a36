"""The daily cycle: from the day's delinquency to the actions handed to agents and channels."""
