"""Small shared building blocks: money, time, errors, crypto, masking, pagination."""
