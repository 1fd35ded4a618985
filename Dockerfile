FROM python:3.11-slim-bookworm
# WeasyPrint needs Pango; psycopg uses its binary wheel.
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-core curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . \
    && DJANGO_SECRET_KEY=build-only AMENDS_EMBEDDED=1 python manage.py collectstatic --noinput \
    && DJANGO_SECRET_KEY=build-only AMENDS_EMBEDDED=1 python manage.py compile_catalogues
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
