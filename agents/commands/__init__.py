"""One module per `tailwatch` subcommand: each adds its arguments and runs."""
