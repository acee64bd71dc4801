from django.conf import settings

from portal import permissions


def portal(request):
    # DRF sets request.user to None for unauthenticated API views that render templates.
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    return {
        "federation_name": settings.FEDERATION_NAME,
        "nav": {
            "is_officer": permissions.is_officer(user),
            "is_checker": permissions.is_checker(user),
            "is_auditor": permissions.can_view_audit(user),
            "is_ppie": permissions.is_ppie(user),
            "is_admin": permissions.is_admin(user),
            "unread": user.notifications.filter(read_at__isnull=True).count(),
        }
        if signed_in
        else {},
    }
