#!/bin/sh
# The one-shot "setup" service of docker-compose.yml: web, worker and beat start only after
# it has finished successfully. Safe to run on every `docker compose up`.
#   migrate; then, if DJANGO_SUPERUSER_USERNAME (and _PASSWORD, _EMAIL) are set, the first
#   administrator (kept if it exists already); then, with DEMO=1, the demo trial and users.
set -eu
python manage.py migrate --noinput
if [ -n "${DJANGO_SUPERUSER_USERNAME:-}" ]; then
  if python manage.py shell -c "import os, sys; from django.contrib.auth import get_user_model; sys.exit(0 if get_user_model().objects.filter(username=os.environ['DJANGO_SUPERUSER_USERNAME']).exists() else 1)"; then
    echo "Administrator ${DJANGO_SUPERUSER_USERNAME} exists already."
  else
    python manage.py createsuperuser --noinput
  fi
fi
if [ "${DEMO:-0}" = 1 ]; then
  python manage.py load_demo
fi
