"""tailwatch's I/O and wiring: Kafka, the embedded broker, subprocesses, files, the CLI.

Decisions live in `pipeline`; an agent decodes, calls the core once per batch, and produces what it returned.
"""
