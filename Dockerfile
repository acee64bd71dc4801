# syntax=docker/dockerfile:1
#
# The Five Safes Portal: one image for the web server (gunicorn, the default command), the django-q2
# workers (`python manage.py qcluster`) and one-off management commands (migrate, verify_audit, ...).
#
#     docker build -t five-safes-portal .
#
# The reference TRE agent has its own image: agent/Dockerfile. See docs/deploy.md.
#
# Base images are pinned to exact releases. Move them together with each security release, and pin
# their digests as well (`docker buildx imagetools inspect IMAGE:TAG`) where your registry policy
# asks for it: FROM python:3.11.15-slim-trixie@sha256:...

# --- Front-end assets: the NHS.UK frontend from npm, exactly as package-lock.json pins it -----------
FROM node:22.23.2-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- Python packages, pinned by requirements.txt, in a virtual environment ---------------------------
FROM python:3.11.15-slim-trixie AS python-packages
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

# --- The run-time image ----------------------------------------------------------------------------
FROM python:3.11.15-slim-trixie AS runtime

LABEL org.opencontainers.image.title="Five Safes Portal" \
      org.opencontainers.image.description="Governance hub for a federation of Trusted Research Environments"

# WeasyPrint's libraries and fonts (the same set as .ci/run), and tini as PID 1 so signals reach
# gunicorn and qcluster and orphaned processes are reaped.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core tini \
 && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged account; the code below stays owned by root, so the portal cannot change it.
RUN groupadd --system --gid 10001 portal \
 && useradd --system --uid 10001 --gid portal --home-dir /home/portal --create-home \
      --shell /usr/sbin/nologin portal \
 && install -d -o portal -g portal -m 0750 /var/lib/portal

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=portal.settings \
    PORTAL_ENV_FILE="" \
    PORTAL_DATA_DIR=/var/lib/portal

WORKDIR /app
COPY --from=python-packages /opt/venv /opt/venv
COPY --from=assets /src/node_modules/nhsuk-frontend/dist /app/node_modules/nhsuk-frontend/dist
COPY manage.py ./
COPY portal ./portal
COPY crates ./crates
COPY reviews ./reviews
COPY transparency ./transparency
COPY templates ./templates
COPY static ./static
COPY deploy/gunicorn.conf.py deploy/healthcheck.py deploy/check_audit_digests.py ./deploy/

# Static files are collected (hashed and compressed for WhiteNoise) at build time. Settings refuse to
# load without a secret key outside debug, so this one command gets a throwaway value that exists
# only for it; the real key comes from DJANGO_SECRET_KEY_FILE at run time.
RUN DJANGO_DEBUG=0 PORTAL_DATA_DIR=/tmp/collectstatic \
    DJANGO_SECRET_KEY=build-only-collectstatic-key-never-used-at-run-time-0123456789 \
    python manage.py collectstatic --no-input -v 0 \
 && rm -rf /tmp/collectstatic \
 && python -m compileall -q /app

USER portal:portal
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "/app/deploy/healthcheck.py", "web"]

ENTRYPOINT ["tini", "--"]
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
