"""The ``image-registry-webhook`` command: its flags, each process's configuration built
from them, and what starts ``serve`` (package ``webhook``), ``frontdoor`` (package
``frontdoor``) or ``controller`` (package ``controller``). This is the only package that
knows all three.
"""
