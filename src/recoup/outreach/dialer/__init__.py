"""Call lists for dialers, click-to-call links and the call-result webhook."""
