"""Webhook pages: subscribe, see the delivery log, send a test, replay, switch on again, delete."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal import permissions, webhooks
from portal.models import TRE, WebhookDelivery, WebhookEndpoint, WebhookEventType
from portal.views.helpers import add_form_errors, domain_errors_as_messages


class WebhookForm(forms.Form):
    url = forms.URLField(label="Address (URL) to send to", max_length=500, assume_scheme="https")
    project = forms.ModelChoiceField(
        queryset=None, required=False, label="Project", to_field_name="identifier"
    )
    tre = forms.ModelChoiceField(queryset=None, required=False, label="Or a TRE", to_field_name="slug")
    event_types = forms.MultipleChoiceField(
        choices=[c for c in WebhookEventType.choices if c[0] != WebhookEventType.PING],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Events (none ticked: all of them)",
    )
    description = forms.CharField(max_length=200, required=False, label="What it is for")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = permissions.visible_projects(user).order_by("identifier")
        watched = [t.pk for t in permissions.tres_governed_by(user)] + [
            t.pk for t in permissions.tres_checked_by(user)
        ]
        self.fields["tre"].queryset = TRE.objects.filter(pk__in=watched).order_by("name")


@login_required
def webhook_list(request):
    form = WebhookForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint = webhooks.create_endpoint(
                by=request.user,
                url=data["url"],
                project=data["project"],
                tre=data["tre"],
                event_types=data["event_types"],
                description=data["description"],
            )
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            messages.success(request, "Subscribed. Copy the signing secret below to check each message.")
            return redirect("webhook_detail", pk=endpoint.pk)
    endpoints = WebhookEndpoint.objects.filter(owner=request.user).select_related("project", "tre")
    return render(request, "portal/webhook_list.html", {"endpoints": endpoints, "form": form})


def _own(request, pk):
    return get_object_or_404(
        WebhookEndpoint.objects.select_related("project", "tre"), pk=pk, owner=request.user
    )


@login_required
def webhook_detail(request, pk):
    endpoint = _own(request, pk)
    deliveries = endpoint.deliveries.all()[:100]
    return render(request, "portal/webhook_detail.html", {"endpoint": endpoint, "deliveries": deliveries})


@login_required
@require_POST
@domain_errors_as_messages
def webhook_ping(request, pk):
    webhooks.send_ping(_own(request, pk), by=request.user)
    messages.success(request, "A test message is on its way.")
    return redirect("webhook_detail", pk=pk)


@login_required
@require_POST
@domain_errors_as_messages
def webhook_enable(request, pk):
    webhooks.enable_endpoint(_own(request, pk), by=request.user)
    messages.success(request, "Switched on again.")
    return redirect("webhook_detail", pk=pk)


@login_required
@require_POST
@domain_errors_as_messages
def webhook_delete(request, pk):
    webhooks.delete_endpoint(_own(request, pk), by=request.user)
    messages.success(request, "Unsubscribed.")
    return redirect("webhook_list")


@login_required
@require_POST
@domain_errors_as_messages
def webhook_replay(request, pk):
    delivery = get_object_or_404(
        WebhookDelivery.objects.select_related("endpoint"), pk=pk, endpoint__owner=request.user
    )
    webhooks.replay(delivery, by=request.user)
    messages.success(request, "The message will be sent again.")
    return redirect("webhook_detail", pk=delivery.endpoint_id)
