from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Five Safes reviews"

    def ready(self):
        from crates.versions import job_resubmitted
        from reviews import services

        def carry_over(sender, *, job, previous_version, version, by, **kwargs):
            services.carry_over(job, previous_version=previous_version, version=version, by=by)

        job_resubmitted.connect(carry_over, dispatch_uid="reviews.carry_over", weak=False)
