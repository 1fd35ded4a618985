from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView


class AmazonSESTrackingView(AmazonSESTrackingWebhookView):
    replaces = AmazonSESTrackingWebhookView
