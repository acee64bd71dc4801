"""The agents page of a TRE: its officers issue, rotate and revoke agent tokens and watch dispatch."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crates import dispatch
from crates import permissions as crate_permissions
from crates.models import Agent
from portal.models import TRE
from portal.views.helpers import add_form_errors, domain_errors_as_messages


class AgentForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="Something that tells this agent apart, e.g. the machine it runs on."
    )


class RevokeForm(forms.Form):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


def _page(request, tre, *, form=None, secret=None, secret_agent=None):
    return render(
        request,
        "crates/agents.html",
        {
            "tre": tre,
            "overview": dispatch.dispatch_overview(tre),
            "can_manage": crate_permissions.can_manage_agents(request.user, tre),
            "form": form or AgentForm(),
            "secret": secret,
            "secret_agent": secret_agent,
        },
    )


@login_required
def tre_agents(request, slug):
    """GET: the TRE's agents and jobs in dispatch. POST: issue a new agent (its token shown once)."""
    tre = get_object_or_404(TRE, slug=slug)
    if request.method != "POST":
        crate_permissions.check_view_agents(request.user, tre)
        return _page(request, tre)
    crate_permissions.check_manage_agents(request.user, tre)
    form = AgentForm(request.POST)
    if form.is_valid():
        try:
            agent, secret = dispatch.issue_agent(tre, form.cleaned_data["name"], by=request.user)
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            return _page(request, tre, secret=secret, secret_agent=agent)
    return _page(request, tre, form=form)


@login_required
@require_POST
@domain_errors_as_messages
def agent_rotate(request, pk):
    agent = get_object_or_404(Agent.objects.select_related("tre"), pk=pk)
    secret = dispatch.rotate_agent_token(agent, by=request.user)
    return _page(request, agent.tre, secret=secret, secret_agent=agent)


@login_required
@require_POST
@domain_errors_as_messages
def agent_revoke(request, pk):
    agent = get_object_or_404(Agent.objects.select_related("tre"), pk=pk)
    form = RevokeForm(request.POST)
    form.is_valid()
    dispatch.revoke_agent(agent, by=request.user, reason=form.cleaned_data.get("reason", ""))
    messages.success(request, f"Revoked {agent.name}. Jobs it held are queued for another agent.")
    return redirect("tre_agents", slug=agent.tre.slug)
