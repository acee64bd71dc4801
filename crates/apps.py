from django.apps import AppConfig


class CratesConfig(AppConfig):
    name = "crates"
    verbose_name = "Five Safes RO-Crates and requests"

    def ready(self):
        from crates.fivesafes.errors import CrateRefused
        from crates.todo import researcher_section
        from portal import todo
        from portal.errors import Refusal

        # The crate library stays free of the portal (the agent uses it too); its refusal is one of
        # the portal's refusals all the same, answered by the page and API handlers (portal/errors.py).
        Refusal.register(CrateRefused)
        todo.register(researcher_section)
