"""Collection letters as PDF from approved templates, printed in a daily batch."""
