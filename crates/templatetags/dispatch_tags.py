"""Dispatch on pages of the registry (a lower layer, which does not import crates): `{% load dispatch_tags %}`."""

from django import template

from crates import dispatch
from crates import permissions as crate_permissions

register = template.Library()


@register.simple_tag(takes_context=True)
def dispatch_overview_for(context, tre):
    """The TRE's dispatch overview for those who may see its agents (its officers see here when its
    agents go quiet or jobs wait too long); None for everyone else."""
    if crate_permissions.can_view_agents(context["request"].user, tre):
        return dispatch.dispatch_overview(tre)
    return None
