from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Five Safes registry"

    def ready(self):
        from portal import signals  # noqa: F401
