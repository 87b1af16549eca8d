"""runtime: see README's Layout."""
