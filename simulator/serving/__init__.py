"""The serving side: starting vLLM (``convsim serve``), the embedded demo model's files, and
``convsim doctor``'s checks of an endpoint; plus reading vLLM's Prometheus metrics.

Nothing here runs conversations: :mod:`simulator.backends` talks to what these start.
"""
