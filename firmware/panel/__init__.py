"""panel: see README's Layout."""
