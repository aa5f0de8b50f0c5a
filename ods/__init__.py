"""Operational data store on PostgreSQL: schema, continuous views, store client, serving merge."""
