"""Pure core of the managed pull secrets feature (see DESIGN.md, "Managed pull secrets").

Everything here works on plain dicts and values: no Kubernetes client, no Flask, no I/O and
no clock reads (the current time is always passed in). The webhook and the reconciler wrap
these functions with the side effects.
"""
