"""config: see README's Layout."""
