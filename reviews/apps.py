from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Five Safes reviews"

    def ready(self):
        from reviews import receivers  # noqa: F401  (connects the receivers of crates.signals)
