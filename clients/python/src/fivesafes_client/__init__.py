"""A researcher's client for the Five Safes Portal (`Client` for notebooks, `fivesafes` on the command line)."""

from fivesafes_client.client import (
    APIError,
    Client,
    Job,
    Output,
    Request,
    TimedOut,
)

__all__ = ["APIError", "Client", "Job", "Output", "Request", "TimedOut"]
