"""Commands run with ``python manage.py <name>``."""
