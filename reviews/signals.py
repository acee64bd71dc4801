"""What reviews hands up to the apps above it (transparency), which reviews never imports.

Sent synchronously inside the transaction of the change; receivers that act later do so on commit.
Receivers are connected in the higher apps' `AppConfig.ready()` (transparency/receivers.py).
"""

from django.dispatch import Signal

# A project's lead published a released output on the project's public page, changed its title or
# summary, or took it off. Sent with `output` (the OutputFile).
publication_changed = Signal()
