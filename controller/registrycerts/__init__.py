"""Node trust: the ConfigMap ``image-registry-certificates`` the node-ca DaemonSet mirrors."""
