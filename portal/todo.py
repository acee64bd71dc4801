"""Sections of the "To do" page contributed by the apps above the registry.

The registry (`portal`) owns the page but not the work of the higher layers (requests and jobs in
`crates`, output checking in `reviews`), and never imports them. Each app registers a function in
its `AppConfig.ready()`; the page asks every function in order and shows the sections they return.
"""

from dataclasses import dataclass, field


@dataclass
class Section:
    """One block of the "To do" page: a template and its context."""

    template: str
    context: dict = field(default_factory=dict)


_PROVIDERS = []


def register(provider):
    """Add `provider(user) -> Section | None` to the page (idempotent, so `ready()` may run twice)."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)
    return provider


def sections_for(user):
    return [section for provider in _PROVIDERS if (section := provider(user)) is not None]
