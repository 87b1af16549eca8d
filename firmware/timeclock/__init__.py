"""timeclock: see README's Layout."""
