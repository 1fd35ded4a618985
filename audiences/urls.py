from django.urls import path

from . import views

app_name = "audiences"

urlpatterns = [
    path("imports/", views.import_upload, name="import-upload"),
    path("imports/reports/<str:name>", views.import_report, name="import-report"),
]
