"""A test-only app for the fault tests' processes: every task a django-q2 worker runs is written down.

Each execution adds a "started" row before the task runs and a "finished" row after it (with its
outcome), tagged with the worker's process id and its cluster's process group, so a test can count how
often each task really ran, and where. The tables are created by tests/faults/conftest.py.
"""

import os

from django.apps import AppConfig
from django.db import connection


def _record(task, phase, success=None, result=None):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO faults_execution (task_id, name, func, pid, pgid, phase, success, result) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                str(task.get("id", "")),
                str(task.get("name", "")),
                str(task.get("func", "")),
                os.getpid(),
                os.getpgid(0),
                phase,
                success,
                None if result is None else str(result)[:2000],
            ],
        )


def _started(sender, task, **kwargs):
    _record(task, "started")


def _finished(sender, task, **kwargs):
    _record(task, "finished", bool(task.get("success")), task.get("result"))


class FaultsConfig(AppConfig):
    name = "tests.faults"
    label = "faults"
    verbose_name = "Fault tests"

    def ready(self):
        from django_q.signals import post_execute_in_worker, pre_execute

        pre_execute.connect(_started, dispatch_uid="faults-started")
        post_execute_in_worker.connect(_finished, dispatch_uid="faults-finished")
