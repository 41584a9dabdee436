"""What failed requests say: the app's 5xx answers, an outage's answers, D1's error, the runtime's stacks and its
log-cap warning."""

from __future__ import annotations

# What a failed request says: (status, outcome, error code, error message, exception name or None).
Failure = tuple[int, str, str, str, str | None]
SERVER_ERRORS: tuple[Failure, ...] = (
    (500, "ok", "INTERNAL_ERROR", "Failed to serialize template payload", None),
    (500, "ok", "INTERNAL_ERROR", "Unexpected null in build spec sections", None),
    (502, "ok", "UPSTREAM_BAD_RESPONSE", "planning service returned an invalid response", None),
    (503, "ok", "UPSTREAM_UNAVAILABLE", "planning service unavailable", None),
    (500, "exception", "UNHANDLED_EXCEPTION", "Cannot read properties of undefined (reading 'slug')", "TypeError"),
    (500, "exception", "UNHANDLED_EXCEPTION", "Unexpected end of JSON input", "SyntaxError"),
)
OUTAGE_ERRORS: tuple[Failure, ...] = (
    (503, "ok", "UPSTREAM_UNAVAILABLE", "planning service unavailable", None),
    (503, "ok", "UPSTREAM_UNAVAILABLE", "planning service unavailable", None),
    (503, "ok", "UPSTREAM_UNAVAILABLE", "circuit open: planning service", None),
    (500, "exception", "UNHANDLED_EXCEPTION", "Network connection lost.", "Error"),
    (504, "ok", "UPSTREAM_TIMEOUT", "planning service timed out after 5000ms", None),
)
D1_FAILURE_MESSAGE = "D1_ERROR: Network connection lost."
STACKS = {
    "TypeError": "    at renderTemplate (index.js:1423:31)\n    at async handleFactory (index.js:988:20)\n"
                 "    at async Object.fetch (index.js:1502:14)",
    "SyntaxError": "    at JSON.parse (<anonymous>)\n    at loadBuildSpec (index.js:2210:17)\n"
                   "    at async Object.fetch (index.js:1502:14)",
    "Error": "    at PlanningClient.fetch (index.js:640:11)\n    at async Object.fetch (index.js:1502:14)",
}
# The runtime's warning when a request logs more than it keeps.
LOG_CAP = ("Log size limit exceeded: More than 256KB of data (across console.log statements, exception, request "
           "metadata and headers) was logged during a single request. Subsequent data for this request will not "
           "be recorded in logs, appear when tailing this Worker's logs, or in Tail Workers.")
