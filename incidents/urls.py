from django.urls import path

from . import views
from .apology_views import apology_check, apology_compose, apology_preview

app_name = "incidents"

urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("declare/", views.incident_declare, name="incident-declare"),
    path("<int:pk>/", views.incident_detail, name="incident-detail"),
    path("<int:pk>/edit/", views.incident_edit, name="incident-edit"),
    path("<int:pk>/close/", views.incident_close, name="incident-close"),
    path("<int:pk>/reopen/", views.incident_reopen, name="incident-reopen"),
    path("<int:pk>/steps/<int:number>/status/", views.step_status, name="step-status"),
    path("<int:pk>/steps/<int:number>/owner/", views.step_owner, name="step-owner"),
    path("<int:pk>/steps/<int:number>/items/", views.checklist_add, name="checklist-add"),
    path("<int:pk>/items/<int:item_id>/tick/", views.checklist_tick, name="checklist-tick"),
    path("<int:pk>/items/<int:item_id>/edit/", views.checklist_edit, name="checklist-edit"),
    path("<int:pk>/items/<int:item_id>/move/", views.checklist_move, name="checklist-move"),
    path("<int:pk>/timeline/", views.timeline, name="timeline"),
    path("<int:pk>/notes/", views.note_add, name="note-add"),
    path("<int:pk>/events/<int:event_id>/correct/", views.event_correct, name="event-correct"),
    path("<int:pk>/stakeholders/", views.stakeholder_add, name="stakeholder-add"),
    path("<int:pk>/stakeholders/<int:stakeholder_id>/remove/", views.stakeholder_remove,
         name="stakeholder-remove"),
    # Step 5: the apology email's content.
    path("<int:pk>/apology/", apology_compose, name="apology-compose"),
    path("<int:pk>/apology/check/", apology_check, name="apology-check"),
    path("<int:pk>/apology/preview/", apology_preview, name="apology-preview"),
]
