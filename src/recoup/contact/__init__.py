"""Contact: channels and their properties, consent and opt-outs, and the contact log."""
