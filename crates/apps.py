from django.apps import AppConfig


class CratesConfig(AppConfig):
    name = "crates"
    verbose_name = "Five Safes RO-Crates and requests"
