"""ResourceQuota usage: ``status.used["alauda.io/imagestreams"]`` recounted from ImageStreams."""
