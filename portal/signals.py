from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver

# A TRE approved a project (portal.services.decide_project). Sent inside the approval's transaction with
# `approval` and `project`; a receiver that raises (ValidationError, for example) refuses the approval
# and rolls it back. The transparency app refuses an approval that would leave the project's Data Use
# Register entry incomplete.
project_approved = Signal()


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile(sender, instance, created, **kwargs):
    """Every person has a registry profile."""
    if created:
        from portal.models import Profile

        Profile.objects.get_or_create(user=instance)
