"""Grafana: results written back as annotations, and the folder, dashboard, data source and
contact point that ``rca grafana provision`` creates, all through ``grafana-client``.

- :mod:`rca.grafana.writeback`: one annotation per finished analysis.
- :mod:`rca.grafana.dashboard`: the dashboard (incidents table, causal-graph node graph) read
  from this API through the Infinity data source; the Helm chart ships the same JSON.
- :mod:`rca.grafana.provision`: idempotent provisioning.
"""

from rca.grafana.writeback import GrafanaWriteBack, annotation_for, connect

__all__ = ["GrafanaWriteBack", "annotation_for", "connect"]
