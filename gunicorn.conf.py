"""How Ops Portal is served in production: gunicorn reads this file from the directory it starts
in, so a plain `gunicorn "ops_portal:create_app()"` serves every page, live ones included.

The whole app runs on gevent workers, not a separate process for the streams: one kind of
process to run and size, and a live page's stream is just another request. A stream waits on
its process's hub (a few KB, no thread, no database connection), so a worker holds thousands.
What would stall a cooperative worker has been made cooperative: PostgreSQL's psycopg 3 waits
through gevent's patched selectors, and SQLite writers queue for their turn on a lock and a
file lock polled with time.sleep (services/transactions.py), both patched; a statement itself
is short. (A writer outside the app that holds SQLite's lock for long, a restore say, would
hold a worker in SQLite's own busy wait: stop the app for those.) Rendering is CPU work either
way: add workers (WEB_CONCURRENCY) per core.

Every setting can be overridden on the command line (`-w 4`, `-b 0.0.0.0:8000`)."""

import os

worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Connections a worker holds at once: its live streams (LIVE_MAX_STREAMS, 3,000 by default)
# and the page requests beside them.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "4000"))
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
# A worker stopping (a deploy, a restart) ends its streams at once (each browser reconnects,
# after its own random wait, to a worker still serving) and gives page requests this long.
graceful_timeout = 10
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"


def post_worker_init(worker):
    """Watches the worker from beside it: once told to stop, its live streams end at once
    rather than being cut off after the graceful timeout."""
    import gevent

    def end_streams_when_stopping():
        while worker.alive:
            gevent.sleep(0.2)
        hub = getattr(worker.wsgi, "extensions", {}).get("live_hub")
        if hub is not None:
            hub.shut()

    gevent.spawn(end_streams_when_stopping)
