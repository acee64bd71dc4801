from django.core.management.base import BaseCommand, CommandError

from portal import audit


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exits non-zero naming the first bad row."

    def handle(self, *args, **options):
        problem = audit.verify_chain()
        if problem is not None:
            raise CommandError(f"Audit trail tampered with at {problem}.", returncode=1)
        digest = audit.head_digest()
        self.stdout.write(f"Audit trail intact: {digest['count']} events, head {digest['hash']}.")
