from django.urls import path

from incidents import views
from incidents.apology.views import send as apology_send_views
from incidents.apology.views.compose import apology_check, apology_compose, apology_preview
from incidents.assessment import views as views_assessment
from incidents.containment import views as views_containment
from incidents.learn.views import postmortem as postmortem_views
from incidents.learn.views import summary as summary_views
from incidents.plan import views as plan_views

app_name = "incidents"

urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("declare/", views.incident_declare, name="incident-declare"),
    # Learn: the managers' crisis summary (issue 11).
    path("summary/", summary_views.summary, name="summary"),
    path("summary/poll/", summary_views.summary_poll, name="summary-poll"),
    path("summary/follow-ups/", summary_views.summary_follow_ups, name="summary-follow-ups"),
    path("summary/export.csv", summary_views.summary_export, name="summary-export"),
    path("<int:pk>/", views.incident_detail, name="incident-detail"),
    path("<int:pk>/edit/", views.incident_edit, name="incident-edit"),
    path("<int:pk>/close/", views.incident_close, name="incident-close"),
    path("<int:pk>/reopen/", views.incident_reopen, name="incident-reopen"),
    path("<int:pk>/live/", views.incident_live, name="incident-live"),
    path("<int:pk>/steps/<int:number>/", views.step_detail, name="step-detail"),
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
    # Step 4: plan, sign-off, breach clock (issue 5)
    path("signoffs/", plan_views.signoff_inbox, name="signoff-inbox"),
    path("<int:pk>/plan/", plan_views.plan_detail, name="plan-detail"),
    path("<int:pk>/plan/edit/", plan_views.plan_edit, name="plan-edit"),
    path("<int:pk>/plan/diff/", plan_views.plan_diff, name="plan-diff"),
    path("<int:pk>/plan/versions/<int:number>/sign/", plan_views.plan_sign, name="plan-sign"),
    path("<int:pk>/plan/signers/", plan_views.signer_request, name="signer-request"),
    # Issue 9: the signer's page, withdrawing a decision, dropping a lowered requirement.
    path("<int:pk>/signoff/", plan_views.signoff_review, name="signoff-review"),
    path("<int:pk>/signoff/withdraw/", plan_views.signoff_withdraw, name="signoff-withdraw"),
    path("<int:pk>/signoff/drop/", plan_views.requirement_drop, name="requirement-drop"),
    path("<int:pk>/breach/aware/", plan_views.breach_aware, name="breach-aware"),
    path("<int:pk>/breach/duties/<int:duty_id>/notified/", plan_views.duty_notified,
         name="duty-notified"),
    path("<int:pk>/breach/duties/<int:duty_id>/not-needed/", plan_views.duty_not_needed,
         name="duty-not-needed"),
    # Step 2: pause the incident's campaigns at their ESPs (issue 4)
    path("<int:pk>/containment/", views_containment.containment, name="containment"),
    path("<int:pk>/containment/stop/", views_containment.campaigns_stop,
         name="campaigns-stop"),
    path("<int:pk>/containment/<int:campaign_pk>/resume/", views_containment.campaign_resume,
         name="campaign-resume"),
    path("<int:pk>/containment/<int:campaign_pk>/cancel/", views_containment.campaign_cancel,
         name="campaign-cancel"),
    path("<int:pk>/containment/campaigns/", views_containment.campaigns_link,
         name="campaigns-link"),
    # Step 3: affected audience and assessment
    path("<int:pk>/audience/", views_assessment.audience_compute, name="audience-compute"),
    path("<int:pk>/audience/progress/", views_assessment.audience_progress,
         name="audience-progress"),
    path("<int:pk>/audience/cancel/", views_assessment.audience_cancel,
         name="audience-cancel"),
    path("<int:pk>/audience/lookup/", views_assessment.audience_lookup,
         name="audience-lookup"),
    path("<int:pk>/assessment/", views_assessment.assessment_update,
         name="assessment-update"),
    # Step 5: the apology email's content.
    path("<int:pk>/apology/", apology_compose, name="apology-compose"),
    path("<int:pk>/apology/check/", apology_check, name="apology-check"),
    path("<int:pk>/apology/preview/", apology_preview, name="apology-preview"),
    # Step 5: sending the apology (issue 4, send).
    path("<int:pk>/apology/send/", apology_send_views.apology_send_start_view,
         name="apology-send"),
    path("<int:pk>/apology/send/progress/", apology_send_views.apology_send_progress_view,
         name="apology-send-progress"),
    path("<int:pk>/apology/send/pause/", apology_send_views.apology_send_pause_view,
         name="apology-send-pause"),
    path("<int:pk>/apology/send/resume/", apology_send_views.apology_send_resume_view,
         name="apology-send-resume"),
    path("<int:pk>/apology/send/cancel/", apology_send_views.apology_send_cancel_view,
         name="apology-send-cancel"),
    path("<int:pk>/apology/send/reconcile/", apology_send_views.apology_send_reconcile_view,
         name="apology-send-reconcile"),
    path("<int:pk>/apology/send/deliveries/<int:delivery_id>/decide/",
         apology_send_views.apology_send_decide_view, name="apology-send-decide"),
    # The learn step: post-mortem, follow-ups, lessons for the playbook, the PDF (issue 11).
    path("<int:pk>/postmortem/", postmortem_views.postmortem, name="postmortem"),
    path("<int:pk>/postmortem/save/", postmortem_views.postmortem_save, name="postmortem-save"),
    path("<int:pk>/postmortem/finish/", postmortem_views.postmortem_finish,
         name="postmortem-finish"),
    path("<int:pk>/postmortem/follow-ups/", postmortem_views.follow_up_add, name="follow-up-add"),
    path("<int:pk>/postmortem/follow-ups/<int:follow_up_id>/done/", postmortem_views.follow_up_done,
         name="follow-up-done"),
    path("<int:pk>/postmortem/lessons/", postmortem_views.lesson_adopt, name="lesson-adopt"),
    path("<int:pk>/postmortem/pdf/", postmortem_views.postmortem_export, name="postmortem-export"),
    path("<int:pk>/postmortem/pdf/<int:export_id>/", postmortem_views.postmortem_export_status,
         name="postmortem-export-status"),
    path("<int:pk>/postmortem/pdf/<int:export_id>/download/",
         postmortem_views.postmortem_export_download, name="postmortem-export-download"),
]
