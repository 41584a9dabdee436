"""The notifier's decisions, pure: which channels an alert goes to, what each channel's message says, when to
retry, how fast to send and what to group. `agents/notify/` does the sending."""
