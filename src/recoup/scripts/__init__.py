"""Call scripts (话术) for hard conversations: library, suggestion, outcomes by script."""
