"""The benchmark suite: datasets of two sizes, a real gunicorn, page and API reads, lifecycle
throughput and the database's own ceiling for it. `python -m benchmarks` (make bench) runs it all;
README.md says what it measures."""
