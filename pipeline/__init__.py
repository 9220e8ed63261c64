"""The Kafka layer: every client, topic and loop the connectors, processors and sinks share.

One job per module: ``clients`` (every producer and consumer configured here), ``partitioner``
(the one key -> partition formula), ``topics`` (topic admin), ``fetcher`` (batches and
rebalances), ``commit_after`` (the at-least-once loop of a processor whose output is not Kafka),
``transaction`` / ``runner`` / ``restore`` (the exactly-once transactional runner), ``stores``
(a processor's state), ``liveness`` and ``bounded_producer`` (every Kafka call bounded).
Imports only ``schemas`` and libraries (README, Layout).
"""
