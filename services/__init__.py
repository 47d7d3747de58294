"""Demo stacks that emit real telemetry: LLM serving, cloud-fog robotics and Sock Shop.

Each stack is described once, as data (``services/stacks/<name>.yaml``, read by
:mod:`services.stack`): its services, who calls whom, the work each request costs and the
metrics each service emits. The same description drives

- :mod:`services.runner`: one process per service (uvicorn, :mod:`services.app`) talking HTTP
  on loopback, instrumented with the OpenTelemetry SDK and exporting to Kafka through
  :class:`collectors.kafka_exporter.KafkaMetricExporter`;
- :mod:`services.load`: a load generator (steady or diurnal);
- :mod:`services.faults` and :mod:`services.inject`: real fault injection through each
  service's authenticated admin endpoint, every injection logged as ground truth;
- the simulator, :mod:`services.sim` (``rca bench --dataset sim:<stack>``), which reads each
  fault's effect from the same table as the live services (:data:`services.stack.FAULTS`).

The library (``rca``) never imports this package: ``rca demo`` (:mod:`services.demo`) and the
``sim:`` datasets reach it through entry points (``rca.commands``, ``rca.datasets``).

``python -m services --help`` brings a stack up, loads it and injects faults by hand;
``rca demo`` does the whole story end to end.
"""
