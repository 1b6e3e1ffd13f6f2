"""The pure rules: plain data in, decisions and messages out. No I/O, no clock reads.

``decision`` (the one allow/deny result), ``objects`` and ``timestamps`` (reading decoded
Kubernetes objects), ``quantity``, ``resources`` and ``fielderrors`` (names, values and
Kubernetes-style field errors), ``measure`` (image size, ImageStream tags and images),
``limits`` (effective LimitRange maxima), ``limitchecks`` (limit decisions and their
messages, for ``kubectl apply`` and for pushes), ``resourcequota`` (ImageStream quota
plans), ``policy`` (apply-time validation of LimitRanges and ResourceQuotas), and
``pullsecrets`` (the managed pull-secret rules).

Nothing here imports the Kubernetes API client, Flask, gunicorn or an HTTP library
(``make lint`` checks it); quantities are parsed by the client's pure helper in
``quantity`` alone.
"""
