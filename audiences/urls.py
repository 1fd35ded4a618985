from django.urls import path

from . import views

app_name = "audiences"

urlpatterns = [
    path("imports/", views.import_upload, name="import-upload"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("imports/<int:pk>/import/", views.import_confirm, name="import-confirm"),
    path("imports/reports/<str:name>", views.import_report, name="import-report"),
]
