"""The notifier: alert events → PagerDuty, Slack and e-mail, each (fingerprint, transition, channel) once."""
