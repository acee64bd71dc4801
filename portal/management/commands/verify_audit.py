from django.core.management.base import BaseCommand, CommandError

from portal import audit


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain and compare it with the digests published outside the database; "
        "exits non-zero naming the first bad row."
    )

    def handle(self, *args, **options):
        problem = audit.verify_chain()
        if problem is not None:
            raise CommandError(f"Audit trail tampered with at {problem}.", returncode=1)
        digests = audit.published_digests()
        problem = audit.verify_against_published(digests)
        if problem is not None:
            raise CommandError(f"Audit trail tampered with at {problem}.", returncode=1)
        digest = audit.head_digest()
        anchored = (
            f"; it matches the {len(digests)} digest(s) published outside the database"
            if digests
            else "; no digest has been published outside the database yet"
        )
        self.stdout.write(f"Audit trail intact: {digest['count']} events, head {digest['hash']}{anchored}.")
