"""Pure rules of managed pull secrets: names, dockerconfigjson, the desired Secret, token
refresh timing and ServiceAccount patches.

Everything here works on plain dicts and values: no Kubernetes client, no Flask, no I/O and
no clock reads (the current time is always passed in). The mutating webhook and the
reconciler wrap these functions with the side effects.
"""
