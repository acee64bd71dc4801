"""What crates hands up to the apps above it (reviews, transparency), which crates never imports.

Each signal is sent synchronously, inside the transaction of the change it announces, so a receiver's
writes commit or roll back with it; receivers that start background work do so on commit. The
receivers are connected in the higher apps' `AppConfig.ready()` (reviews/receivers.py).
"""

from django.dispatch import Signal

# A job waits for its TRE's governance officers: it was created, or moved back to review by a new
# version. Sent with `job`.
review_needed = Signal()

# A job that waited for changes moved to a new version of its request. Sent with `job` (now on the new
# version), `previous_version`, `version` and `by` (who made the version). Reviews carries over the step
# decisions the change did not touch.
job_resubmitted = Signal()

# An agent's results crate was verified and stored and the job moved to "outputs returned". Sent with
# `upload` (the ResultUpload).
results_returned = Signal()

# The every-minute lease sweep (crates.dispatch_tasks.expire_leases) ran: the moment to hand out again
# background work that a lost worker dropped. Sent with no arguments.
leases_swept = Signal()

# A job failed (reported by its agent, or its lease ran out of attempts). Sent with `job`, inside the
# transition's transaction: the researchers are told at once, in the portal and by e-mail.
job_failed = Signal()
