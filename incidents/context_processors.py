from django.http import HttpRequest

from incidents.plan.signoff import signer_roles_of, signoff_inbox_count


def signoff_inbox(request: HttpRequest) -> dict:
    """The header's "waiting for your sign-off" count, for legal and security only."""
    user = getattr(request, "user", None)
    if user is None or not signer_roles_of(user):
        return {}
    return {"signoff_nav": True, "signoff_inbox_count": signoff_inbox_count(user=user)}
