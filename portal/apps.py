from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Five Safes registry"

    def ready(self):
        from portal import grants, signals, webhooks  # noqa: F401

        grants.connect()  # every grant audited, from any place (portal.grants)
