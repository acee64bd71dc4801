from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Five Safes reviews"

    def ready(self):
        from portal import todo
        from reviews import receivers  # noqa: F401  (connects the receivers of crates.signals)
        from reviews.todo import checker_section

        todo.register(checker_section)
