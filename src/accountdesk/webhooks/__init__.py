"""Webhooks: events written to the outbox with the change that caused them, delivered to the endpoints that want
them with Standard Webhooks signatures. Low in the layers so that every service can emit (it imports core and mail);
the console pages and the API for endpoints live in `webhook_admin`."""
