from django.apps import AppConfig


class TransparencyConfig(AppConfig):
    name = "transparency"
    verbose_name = "Transparency for the public"

    def ready(self):
        from transparency import receivers  # noqa: F401  (connects the receivers of the lower apps' signals)
