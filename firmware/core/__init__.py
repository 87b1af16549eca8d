"""core: see README's Layout."""
