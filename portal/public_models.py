"""Questions the public ask about a project, published with an answer once an officer moderates them.

Imported by `portal.models` so they belong to the portal app. Changes go through `transparency.public`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class PublicQuestion(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for moderation"
        PUBLISHED = "published", "Published with an answer"
        REJECTED = "rejected", "Not published"

    project = models.ForeignKey("portal.Project", on_delete=models.CASCADE, related_name="public_questions")
    # Who asked: seen by the moderating officers only, never on a public page or in an export.
    name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    question = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    moderated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "portal"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "status"], name="public_question_status_idx")]
        constraints = [
            # Waiting: untouched. Published: answered, by someone, when. Rejected: moderated.
            models.CheckConstraint(
                condition=(
                    Q(
                        status="pending",
                        moderated_at__isnull=True,
                        answered_by__isnull=True,
                        answered_at__isnull=True,
                    )
                    | (
                        Q(
                            status="published",
                            moderated_at__isnull=False,
                            answered_by__isnull=False,
                            answered_at__isnull=False,
                        )
                        & ~Q(answer="")
                    )
                    | Q(status="rejected", moderated_at__isnull=False)
                ),
                name="public_question_moderation_state",
            ),
        ]

    def __str__(self):
        # No name or e-mail here: this string reaches the audit trail and admin lists.
        return f"Question {self.pk} about {self.project_id} ({self.status})"
