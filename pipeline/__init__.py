"""tailwatch's pure core: reading wrangler output, normalizing, routing, batching, windows and rules.

No I/O, no event loop, no clock: time comes in as integer milliseconds.
"""
