"""Finding 6: role and permission grants made in the admin left no audit event. Now every grant (group
membership, model and object permissions, staff flags), from the admin, a shell or a service, is an
audit event written with the change."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from portal import audit, roles
from portal.audit import AuditEvent
from tests.conftest import _person, sign_in

pytestmark = pytest.mark.django_db


def _events(verb, user):
    return list(AuditEvent.objects.filter(verb=verb, object_id=str(user.pk)).order_by("pk"))


def _change_form(user, **changes):
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_making_someone_staff_and_an_officer_in_the_admin_is_audited(client, admin_user, tre_a):
    mallory = _person("mallory")
    officers, _ = Group.objects.get_or_create(name=roles.GOVERNANCE_OFFICER)
    sign_in(client, admin_user)
    answer = client.post(
        f"/admin/auth/user/{mallory.pk}/change/",
        _change_form(mallory, is_staff="on", is_superuser="on", groups=[officers.pk]),
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    (flags,) = _events("grant.staff_flags_changed", mallory)
    assert flags.after == {"is_staff": True, "is_superuser": True}
    assert flags.before == {"is_staff": False, "is_superuser": False}
    assert (flags.actor_kind, flags.actor_id) == ("user", str(admin_user.pk))
    (group,) = _events("grant.group_added", mallory)
    assert group.after == {"group": roles.GOVERNANCE_OFFICER}
    assert group.actor_id == str(admin_user.pk)
    # Taking them away again is audited too.
    answer = client.post(f"/admin/auth/user/{mallory.pk}/change/", _change_form(mallory))
    assert answer.status_code == 302
    assert _events("grant.group_removed", mallory)[0].before == {"group": roles.GOVERNANCE_OFFICER}
    assert _events("grant.staff_flags_changed", mallory)[-1].after == {
        "is_staff": False,
        "is_superuser": False,
    }
    assert not audit.verify_chain()


def test_grants_made_in_a_shell_are_audited(tre_a):
    mallory = _person("mallory")
    with transaction.atomic():
        mallory.is_superuser = True
        mallory.save()
        mallory.groups.add(Group.objects.get_or_create(name=roles.AUDITOR)[0])
        mallory.user_permissions.add(Permission.objects.get(codename="govern_tre"))
        assign_perm("portal.govern_tre", mallory, tre_a)
    (flags,) = _events("grant.staff_flags_changed", mallory)
    assert flags.actor_kind == "system" and "shell" in flags.actor_label
    assert _events("grant.group_added", mallory)[0].after == {"group": roles.AUDITOR}
    assert _events("grant.permission_added", mallory)[0].after == {"permission": "portal.govern_tre"}
    (scoped,) = _events("grant.object_permission_added", mallory)
    assert scoped.after["permission"] == "portal.govern_tre"
    assert scoped.tre_slug == tre_a.slug
    remove_perm("portal.govern_tre", mallory, tre_a)
    assert _events("grant.object_permission_removed", mallory)[0].before["permission"] == "portal.govern_tre"
    mallory.groups.clear()
    assert _events("grant.group_removed", mallory)[0].before == {"group": roles.AUDITOR}


def test_a_grant_and_its_event_roll_back_together(tre_a):
    mallory = _person("mallory")
    with pytest.raises(RuntimeError), transaction.atomic():
        assign_perm("portal.govern_tre", mallory, tre_a)
        raise RuntimeError("the change fails")
    assert not mallory.has_perm("portal.govern_tre", tre_a)
    assert not _events("grant.object_permission_added", mallory)


def test_group_side_changes_are_audited_too():
    mallory = _person("mallory")
    group, _ = Group.objects.get_or_create(name=roles.OUTPUT_CHECKER)
    group.user_set.add(mallory)
    assert _events("grant.group_added", mallory)[0].after == {"group": roles.OUTPUT_CHECKER}


def test_a_role_granted_through_the_service_is_audited_once(admin_user, tre_a):
    from portal import services

    cleo = _person("cleo")
    services.grant_role(cleo, roles.OUTPUT_CHECKER, by=admin_user, tre=tre_a)
    assert AuditEvent.objects.filter(verb="role.granted", object_id=str(cleo.pk)).count() == 1
    assert not AuditEvent.objects.filter(verb__startswith="grant.", object_id=str(cleo.pk)).exists()
