from django.apps import AppConfig


class CratesConfig(AppConfig):
    name = "crates"
    verbose_name = "Five Safes RO-Crates and requests"

    def ready(self):
        from crates.todo import researcher_section
        from portal import todo

        todo.register(researcher_section)
