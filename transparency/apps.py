from django.apps import AppConfig


class TransparencyConfig(AppConfig):
    name = "transparency"
    verbose_name = "Transparency for the public"

    def ready(self):
        from portal import todo
        from transparency import receivers  # noqa: F401  (connects the receivers of the lower apps' signals)
        from transparency.todo import ppie_section

        todo.register(ppie_section)
