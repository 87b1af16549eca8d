"""schedule: see README's Layout."""
