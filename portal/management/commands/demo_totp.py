import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.management.base import BaseCommand, CommandError

from portal import demo


class Command(BaseCommand):
    help = "Print the current one-time code of a demo user (demo federation only)."

    def add_arguments(self, parser):
        parser.add_argument("username", help="A demo user, e.g. olivia")

    def handle(self, username, **options):
        if username not in {member.username for member in demo.CAST}:
            raise CommandError(f"{username!r} is not in the demo cast.")
        secret = demo.totp_secret_for(username)
        self.stdout.write(format_hotp_value(hotp_value(secret, int(time.time()) // 30)))
