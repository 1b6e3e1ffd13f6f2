"""Managed pull secrets: one fresh, bound-token dockerconfigjson Secret per ServiceAccount."""
