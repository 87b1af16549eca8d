"""records: see README's Layout."""
