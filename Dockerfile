FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files with the production storage (hashed names + manifest, compressed): the
# pages rendered under DJANGO_ENV=production look their files up in that manifest. The
# key and hosts here exist only for this build step; the running container gets its own.
RUN DJANGO_ENV=production SECRET_KEY=collectstatic-at-build-time-only-not-a-real-secret-0123456789 \
    ALLOWED_HOSTS=build python manage.py collectstatic --noinput
# var/cdisc-packages: the mount point of the packages volume (docker-compose.yml), owned by the
# app's user so that a new volume is too.
RUN mkdir -p var/cdisc-packages && useradd --system --uid 1000 trialdesk && chown -R trialdesk /app
USER trialdesk
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
