"""Every grant is audited, whoever makes it and wherever: the admin, a shell, a service.

Roles are groups and TRE scopes are django-guardian object permissions (portal.roles); the admin site
and the staff flags open everything else. Signals turn each change of these into an audit event,
written in the transaction of the change itself (the admin's and the services' are atomic):

| change                                   | signal                          | audit verb                       |
|------------------------------------------|---------------------------------|----------------------------------|
| a group added to / removed from a person | m2m_changed on User.groups      | grant.group_added / _removed     |
| a model permission given / taken         | m2m_changed on User.user_permissions | grant.permission_added / _removed |
| a guardian object permission             | post_save / post_delete on User- and GroupObjectPermission | grant.object_permission_added / _removed |
| is_staff / is_superuser / is_active set  | pre_save diff, post_save record | grant.staff_flags_changed        |

The actor is the signed-in person of the web request under way (`ActorMiddleware`), or, outside a
request (a shell, a management command, a task), the portal itself labelled as such. `grant_role` and
`revoke_role` write their own, richer event and silence these for the changes they make.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from guardian.models import GroupObjectPermission, UserObjectPermission

from portal import audit

FLAGS = ("is_staff", "is_superuser", "is_active")
OUTSIDE_A_REQUEST = audit.Actor(
    audit.AuditEvent.ActorKind.SYSTEM, "", "Five Safes Portal (shell, command or task)"
)

_request = ContextVar("grant_request", default=None)
_silenced = ContextVar("grants_silenced", default=False)


class ActorMiddleware:
    """Remember the request under way, so that a grant made while serving it names its person."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextmanager
def audited_by_caller():
    """The caller writes its own audit event for the grants made inside (portal.services.grant_role)."""
    token = _silenced.set(True)
    try:
        yield
    finally:
        _silenced.reset(token)


def _actor():
    request = _request.get()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    return OUTSIDE_A_REQUEST


def _person(user):
    return {"obj": user, "object_label": user.email or user.get_username()}


def _tre_of(obj):
    from portal.models import TRE

    return obj if isinstance(obj, TRE) else ""


# --- Groups and model permissions ----------------------------------------------------------------


def _members_changed(kind, sender, instance, action, reverse, model, pk_set, **kwargs):
    """m2m_changed on User.groups or User.user_permissions, from either side."""
    if _silenced.get():
        return
    if action == "pre_clear":
        # What a clear() removes is known only before it runs.
        if reverse:
            instance._grants_cleared = list(instance.user_set.all())
        else:
            instance._grants_cleared = list(getattr(instance, kind).all())
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    verb = f"grant.{'group' if kind == 'groups' else 'permission'}_{'added' if action == 'post_add' else 'removed'}"
    if action == "post_clear":
        others = instance.__dict__.pop("_grants_cleared", [])
    else:
        others = list(model.objects.filter(pk__in=pk_set or ()))
    pairs = [(other, instance) for other in others] if reverse else [(instance, other) for other in others]
    for user, granted in pairs:
        name = granted.name if kind == "groups" else f"{granted.content_type.app_label}.{granted.codename}"
        key = "group" if kind == "groups" else "permission"
        change = {key: name}
        audit.record(
            verb,
            by=_actor(),
            **_person(user),
            after=change if action == "post_add" else None,
            before=None if action == "post_add" else change,
        )
        user.__dict__.pop("_portal_roles", None)


def _groups_changed(sender, **kwargs):
    _members_changed("groups", sender, **kwargs)


def _permissions_changed(sender, **kwargs):
    _members_changed("user_permissions", sender, **kwargs)


# --- Object permissions (django-guardian) ---------------------------------------------------------


def _object_permission(instance, verb, change_key):
    if _silenced.get():
        return
    holder = getattr(instance, "user", None) or getattr(instance, "group", None)
    target = instance.content_object
    change = {
        "permission": f"{instance.permission.content_type.app_label}.{instance.permission.codename}",
        "on": f"{instance.content_type.app_label}.{instance.content_type.model} {instance.object_pk}",
        "object": str(target)[:200] if target is not None else "",
    }
    if isinstance(instance, UserObjectPermission):
        label = holder.email or holder.get_username()
    else:
        label = f"group {holder.name}"
        change["group"] = holder.name
    audit.record(
        verb,
        by=_actor(),
        obj=holder,
        object_label=label,
        after=change if change_key == "after" else None,
        before=change if change_key == "before" else None,
        tre=_tre_of(target) if target is not None else "",
    )


def _object_permission_saved(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        _object_permission(instance, "grant.object_permission_added", "after")


def _object_permission_deleted(sender, instance, **kwargs):
    _object_permission(instance, "grant.object_permission_removed", "before")


# --- Staff flags ---------------------------------------------------------------------------------


def _flags_before(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or (update_fields is not None and not set(update_fields) & set(FLAGS)):
        return  # (sign-ins save last_login only: no query for them)
    before = {}
    if instance.pk is not None:
        before = sender.objects.filter(pk=instance.pk).values(*FLAGS).first() or {}
    instance._grant_flags_before = before


def _flags_after(sender, instance, created, raw=False, **kwargs):
    before = instance.__dict__.pop("_grant_flags_before", None)
    if raw or before is None:
        return
    after = {flag: getattr(instance, flag) for flag in FLAGS}
    if created:
        changed = [flag for flag in ("is_staff", "is_superuser") if after[flag]]
    else:
        changed = [flag for flag in FLAGS if before.get(flag) != after[flag]]
    if not changed:
        return
    audit.record(
        "grant.staff_flags_changed",
        by=_actor(),
        **_person(instance),
        before={flag: before.get(flag) for flag in changed} if not created else None,
        after={flag: after[flag] for flag in changed},
    )


def connect():
    User = get_user_model()
    m2m_changed.connect(_groups_changed, sender=User.groups.through, dispatch_uid="grants.groups")
    m2m_changed.connect(
        _permissions_changed, sender=User.user_permissions.through, dispatch_uid="grants.permissions"
    )
    for model in (UserObjectPermission, GroupObjectPermission):
        post_save.connect(
            _object_permission_saved, sender=model, dispatch_uid=f"grants.{model.__name__}.save"
        )
        post_delete.connect(
            _object_permission_deleted, sender=model, dispatch_uid=f"grants.{model.__name__}.delete"
        )
    pre_save.connect(_flags_before, sender=User, dispatch_uid="grants.flags.before")
    post_save.connect(_flags_after, sender=User, dispatch_uid="grants.flags.after")
