"""An application server built on uWSGI: `myserver --http-socket ... --wsgi-file app.py`."""
started_by_server = False
