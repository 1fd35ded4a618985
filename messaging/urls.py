from django.urls import path

from . import views

app_name = "messaging"

urlpatterns = [
    path("brands/", views.brand_list, name="brand-list"),
    path("brands/new/", views.brand_create, name="brand-create"),
    path("brands/<int:pk>/", views.brand_edit, name="brand-edit"),
    path("brands/<int:pk>/default/", views.brand_set_default, name="brand-set-default"),
    path("brands/<int:pk>/preview/", views.brand_preview, name="brand-preview"),
]
