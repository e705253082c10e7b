"""Celery side of async jobs: the app's configuration, the thin task, the queue that feeds it."""
