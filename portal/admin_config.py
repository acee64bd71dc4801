"""django.contrib.admin's app, with `admin.site` the portal's own (portal.admin_site): kept apart so
that loading the app imports nothing that needs the app registry."""

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin_site.PortalAdminSite"
