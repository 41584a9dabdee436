"""Hostile channel files (issue 7, item 4, the channel config loader): hypothesis mutates valid channel files and
generates arbitrary ones. The loader either returns channels or raises `ChannelFileError` whose every line is
`path:line: …` (`path: …` only for YAML errors without a position) — nothing else escapes; a YAML python tag never
runs (a tag that would create a file is rejected and the file never appears); no secret from the environment is
ever echoed in an error.

Bounded for CI (~2,000 cases, well under 30 s); a longer run: TAILWATCH_FUZZ_CASES=100000 pytest <this file>.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.notify.config import DEFAULT_CHANNELS, ChannelFileError, load_channels
from tests.reliability_channels_support import channel_file

CASES = int(os.environ.get("TAILWATCH_FUZZ_CASES", "2000"))
SECRETS = {"PAGERDUTY_INTEGRATION_KEY": "pdKEY9f0e1d2c3b4a5", "SLACK_CRITICAL_WEBHOOK": "https://hooks.example/T/B/critSECRET77",
           "SLACK_ALERTS_WEBHOOK": "https://hooks.example/T/B/alertsSECRET88",
           "SLACK_MONITORING_WEBHOOK": "https://hooks.example/T/B/monSECRET99", "SMTP_HOST": "127.0.0.1",
           "SMTP_PASSWORD": "smtpPASSWORD-4242", "SMTP_USER": "bot", "SMTP_FROM": "t@example.test",
           "SMTP_PORT": "2525", "SMTP_TLS": "none"}
SECRET_VALUES = [v for k, v in SECRETS.items() if k in ("PAGERDUTY_INTEGRATION_KEY", "SMTP_PASSWORD")
                 or k.endswith("_WEBHOOK")]
MARKER = Path("/tmp") / f"tailwatch-fuzz-executed-{os.getpid()}"
CODE_TAGS = [f"!!python/object/apply:os.system [\"touch {MARKER}\"]",
             f"!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path [\"{MARKER}\"]]",
             "!!python/name:os.system", "!!python/object/new:subprocess.Popen [[\"true\"]]", "!!binary aGVsbG8=",
             "&a [*a]", "!!set {a, b}", "!!timestamp 2001-12-14", "!<tag:yaml.org,2002:python/none> ''"]
SEEDS = [DEFAULT_CHANNELS.read_text()]
YAML_BITS = [":", " ", "\n", "-", "{", "}", "[", "]", "'", '"', "#", "&x", "*x", "!", "|", ">", "?", ",", "%", "\t",
             "$", "$PAGERDUTY_INTEGRATION_KEY", "$SMTP_PASSWORD", "$SLACK_ALERTS_WEBHOOK", "~", "null", "1e999",
             "-1", "0x10", "\x00", "\ufeff", "é", "version: 2", "type: sms", "retry: {max_attempts: 0}",
             "rate_limit: {max: -1, per: 0s}", "group_wait: 99999999h", "recipients: []", "<<: *x"]
LINE_RE = re.compile(r"^(?P<path>.+?):(?P<line>\d+|\?)?:? ")

runs = {"cases": 0, "accepted": 0, "rejected": 0, "no_line": 0, "seconds": 0.0}


def _mutations() -> st.SearchStrategy[str]:
    seed = st.sampled_from(SEEDS)

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        text = draw(seed)
        for _ in range(draw(st.integers(1, 6))):
            lines = text.split("\n")
            op = draw(st.sampled_from(["insert", "delete", "swap", "tag", "replace_value", "dup"]))
            i = draw(st.integers(0, max(0, len(lines) - 1)))
            if op == "insert":
                at = draw(st.integers(0, len(text)))
                bit = draw(st.sampled_from(YAML_BITS) | st.text(max_size=8))
                text = text[:at] + bit + text[at:]
                continue
            if op == "delete" and lines:
                at = draw(st.integers(0, max(0, len(text) - 1)))
                text = text[:at] + text[at + draw(st.integers(1, 20)):]
                continue
            if op == "swap" and len(lines) > 1:
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "tag":
                head, _, _ = lines[i].partition(":")
                lines[i] = f"{head or 'x'}: {draw(st.sampled_from(CODE_TAGS))}"
            elif op == "replace_value" and ":" in lines[i]:
                head = lines[i].split(":")[0]
                value = draw(st.sampled_from(YAML_BITS) | st.text(max_size=12)
                             | st.sampled_from([v for v in SECRET_VALUES]).map(lambda s: "x"))
                lines[i] = f"{head}: {value}"
            elif op == "dup":
                lines.insert(i, lines[i])
            text = "\n".join(lines)
        return text

    return mutate()


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**12), st.floats(allow_nan=True),
                     st.text(max_size=20), st.sampled_from(["$PAGERDUTY_INTEGRATION_KEY", "$SLACK_CRITICAL_WEBHOOK",
                                                            "$SMTP_PASSWORD", "$NOPE", "10s", "0s", "1m", "slack",
                                                            "pagerduty", "email", "#x", "@here"]))
_keys = st.sampled_from(["version", "channels", "type", "webhook_url", "integration_key", "recipients", "retry",
                         "rate_limit", "group_wait", "group_interval", "send_resolved", "max_attempts", "initial",
                         "max", "timeout", "per", "mention", "channel", "escalation_policy", "pagerduty",
                         "slack-critical", "email"]) | st.text(max_size=10)
_documents = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(_keys, inner, max_size=6), max_leaves=25)


def _generated() -> st.SearchStrategy[str]:
    return (st.fixed_dictionaries({"version": st.sampled_from([1, 2, "1", None]), "channels": _documents})
            | _documents).map(lambda doc: yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


def _check(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    runs["cases"] += 1
    try:
        channels = load_channels(path, env=SECRETS)
    except ChannelFileError as error:
        runs["rejected"] += 1
        message = str(error)
        assert message.strip(), "an empty error"
        for line in message.splitlines():
            match = LINE_RE.match(line)
            assert match and match.group("path") == str(path), f"not `path:line: …`: {line!r}"
            if match.group("line") in (None, "?"):
                runs["no_line"] += 1
        for secret in SECRET_VALUES:
            if secret not in text:
                assert secret not in message, "a secret from the environment in an error"
    else:
        runs["accepted"] += 1
        for channel in channels:
            described = repr(channel.describe())
            assert not any(secret in described for secret in SECRET_VALUES)
    assert not MARKER.exists(), "a YAML tag ran code"


@settings(max_examples=CASES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(text=_mutations() | _generated() | st.text(max_size=300))
def test_hostile_channel_files_fail_only_with_the_documented_error(text: str, tmp_path_factory: object) -> None:
    path = FUZZ_DIR / "channels.yaml"
    started = time.perf_counter()
    _check(path, text)
    runs["seconds"] += time.perf_counter() - started


FUZZ_DIR = Path("/tmp") / f"tailwatch-channel-fuzz-{os.getpid()}"
FUZZ_DIR.mkdir(exist_ok=True)


def test_python_tags_are_rejected_and_never_run(tmp_path: Path) -> None:
    """Each code-running tag, at the top and nested in a channel: a ChannelFileError, and no marker file."""
    for tag in CODE_TAGS[:4]:
        for text in (f"version: 1\nchannels: {tag}\n",
                     f"version: 1\nchannels:\n  slack-alerts:\n    type: slack\n    webhook_url: {tag}\n"):
            path = tmp_path / "tagged.yaml"
            path.write_text(text)
            try:
                load_channels(path, env=SECRETS)
            except ChannelFileError as error:
                assert re.match(rf"^{re.escape(str(path))}:\d+: not valid YAML", str(error)), str(error)
            else:
                raise AssertionError(f"accepted {tag}")
            assert not MARKER.exists()


def test_undecodable_and_control_characters_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    for raw, want in ((b"version: 1\nchannels: \xff\n", ":2: not UTF-8 text"),
                      (b"version: 1\n\nchannels: \x1f\n", ":3: not valid YAML: special characters are not allowed"),
                      (b'version: 1\nchannels: {"a\\rb": {type: slack}}\n', ":2: channels.a\\rb.webhook_url")):
        path.write_bytes(raw)
        try:
            load_channels(path, env=SECRETS)
        except ChannelFileError as error:
            assert str(error).startswith(f"{path}{want}"), str(error)
            assert len(str(error).splitlines()) == len(str(error).split("\n"))  # no stray line breaks
        else:
            raise AssertionError(raw)


def test_fuzz_figures() -> None:
    """Runs after the fuzz test (file order): the seed files are valid, and the figures for the README."""
    base = channel_file(FUZZ_DIR / "seed.yaml")
    assert len(load_channels(base, env=SECRETS)) == 5
    assert len(load_channels(DEFAULT_CHANNELS, env=SECRETS)) == 5
    if runs["cases"]:
        print(f"\nchannel config fuzz: {runs['cases']} cases, {runs['accepted']} accepted, {runs['rejected']} "
              f"rejected with `path:line` ({runs['no_line']} error lines without a line number), 0 crashes, "
              f"{runs['cases'] / max(runs['seconds'], 1e-9):.0f} cases/s (loader time)")
