"""`deepepi doctor`: ``report`` gathers versions, providers, GPUs and problems with fixes; the framework
probes (``probe_torch``, ``probe_tensorflow``) run in child processes so a broken install cannot hang it."""
