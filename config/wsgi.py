import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# The framework loaded above lives as long as the worker: keep it out of the cyclic
# collector's reach, so that the full collections a large request triggers (a 1,000-event
# webhook allocates tens of thousands of objects) do not walk all of Django every time.
gc.collect()
gc.freeze()
