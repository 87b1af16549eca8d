"""office: see README's Layout."""
