"""pj: see README's Layout."""
