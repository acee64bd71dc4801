"""A marker task for the fault tests: each run counts itself against its key (a unique row)."""

import os
import time

from django.db import connection


def mark(key, seconds=0.0):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO faults_marker (key, runs, pgid) VALUES (%s, 1, %s) "
            "ON CONFLICT (key) DO UPDATE SET runs = faults_marker.runs + 1",
            [key, os.getpgid(0)],
        )
    time.sleep(seconds)
    return key
