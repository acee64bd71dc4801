from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile(sender, instance, created, **kwargs):
    """Every person has a registry profile."""
    if created:
        from portal.models import Profile

        Profile.objects.get_or_create(user=instance)


from portal import grants  # noqa: E402  (every grant audited: portal.grants)

grants.connect()
