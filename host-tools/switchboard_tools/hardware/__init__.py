"""hardware: see README's Layout."""
