"""Pure rules of image limits and quota: plain data in, decisions and messages out.

Modules: ``quantity`` (parse/format Kubernetes quantities), ``resources`` (names),
``usage`` (image size, ImageStream tags and images), ``limits`` (effective LimitRange
maxima), ``verdict`` (limit decisions and messages), ``resourcequota`` (ImageStream quota
arithmetic), ``policy`` (apply-time validation of LimitRanges and ResourceQuotas),
``fielderrors`` (Kubernetes-style field errors). No I/O, no Kubernetes API calls.
"""
