"""tailwatch's message contracts: every Kafka value and every external input shape, as pydantic v2 models.

`schemas` imports nothing else of tailwatch. Hot paths carry plain dicts shaped like these models; the models are
the documentation, the JSON Schema export and the validation used at the edges and in tests.
"""
