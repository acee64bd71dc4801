"""Template helpers: NHS.UK frontend form fields, status tags and permission questions."""

import datetime

from django import forms, template
from django.template.loader import render_to_string
from django.utils import dateformat, timezone

from portal import permissions, plain, ppie

register = template.Library()

_WIDGET_CLASSES = {
    forms.Textarea: "nhsuk-textarea",
    forms.Select: "nhsuk-select",
    forms.SelectMultiple: "nhsuk-select",
    forms.ClearableFileInput: "nhsuk-file-upload",
    forms.FileInput: "nhsuk-file-upload",
    forms.CheckboxInput: "nhsuk-checkboxes__input",
}


def _widget_class(widget):
    for kind, css in _WIDGET_CLASSES.items():
        if isinstance(widget, kind):
            return css
    return "nhsuk-input"


@register.simple_tag
def nhs_field(field):
    """Render one bound field the NHS.UK way: label, hint, error message, then the control."""
    widget = field.field.widget
    if isinstance(widget, forms.CheckboxSelectMultiple | forms.RadioSelect):
        kind = "choices"
    elif isinstance(widget, forms.CheckboxInput):
        kind = "checkbox"
    else:
        kind = "input"
    css = _widget_class(widget)
    if field.errors:
        css += f" {css.split()[0]}--error"
    attrs = {"class": css}
    if field.help_text:
        attrs["aria-describedby"] = f"{field.auto_id}-hint"
    return render_to_string(
        "portal/includes/field.html",
        {
            "field": field,
            "kind": kind,
            "control": field.as_widget(attrs=attrs) if kind != "choices" else "",
            "multiple": isinstance(widget, forms.CheckboxSelectMultiple),
        },
    )


_TAG_COLOURS = {
    "approved": "green",
    "active": "green",
    "pending": "yellow",
    "invited": "blue",
    "draft": "grey",
    "refused": "red",
    "revoked": "red",
    "lapsed": "orange",
    "suspended": "orange",
    "terminated": "grey",
    "withdrawn": "grey",
    "closed": "grey",
    # Jobs
    "failed": "red",
    "rejected": "red",
    "withheld": "red",
    "cancelled": "grey",
    "released": "green",
    "awaiting_review": "yellow",
    "in_review": "yellow",
    "changes_requested": "orange",
    "output_changes_requested": "orange",
    "queued": "blue",
    "claimed": "blue",
    "running": "blue",
    "outputs_returned": "blue",
    "output_review": "purple",
}


@register.inclusion_tag("portal/includes/status_tag.html")
def status_tag(status, label=None):
    return {"colour": _TAG_COLOURS.get(str(status), "grey"), "label": label or str(status).replace("_", " ")}


@register.filter
def can_govern(user, tre):
    return permissions.can_govern_tre(user, tre)


@register.filter
def get_item(mapping, key):
    """mapping[key] in a template, or None."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


def _govuk_time(moment):
    """GOV.UK style: 5:24pm, 9am, midday, midnight."""
    if moment.hour == 12 and moment.minute == 0:
        return "midday"
    if moment.hour == 0 and moment.minute == 0:
        return "midnight"
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    return f"{hour}:{moment.minute:02d}{suffix}" if moment.minute else f"{hour}{suffix}"


@register.filter
def govuk_datetime(value):
    """One date-and-time format everywhere: "7 December 2026, 5:24pm" (in the portal's time zone)."""
    if not value:
        return ""
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return f"{value.day} {dateformat.format(value, 'F Y')}, {_govuk_time(value)}"
    return govuk_date(value)


@register.filter
def govuk_date(value):
    """One date format everywhere: "7 December 2026"."""
    if not value:
        return ""
    if isinstance(value, datetime.datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return dateformat.format(value, "j F Y")


@register.filter
def ppie_view(project):
    """The PPIE members' view of a project's lay summary (reads prefetched `ppie_reviews`)."""
    return ppie.view_of(project)


@register.filter
def event_sentence(verb):
    """An audit event code as a phrase people read ("started the Five Safes review")."""
    return plain.sentence(verb)


@register.filter
def in_words(text):
    """The crate's class and property names replaced by what they mean."""
    return plain.in_words(text)
