import os

from django.core.wsgi import get_wsgi_application

from config.longlived import settle_long_lived_process

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
settle_long_lived_process()
