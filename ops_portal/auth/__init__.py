"""Login and logout (Flask-Login sessions)."""
