from django.core.management.base import BaseCommand

from incidents.demo import DEMO_PASSWORD, DEMO_USERS, demo_seed


class Command(BaseCommand):
    help = "Load the demo users and incidents (idempotent: only what is missing is created)."

    def handle(self, *args, **options) -> None:
        created = demo_seed()
        self.stdout.write(f"Demo data ready ({len(created)} incidents created).")
        for username, _first, _last, role in DEMO_USERS:
            self.stdout.write(f"  {role.label:<15} {username} / {DEMO_PASSWORD}")
