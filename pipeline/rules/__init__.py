"""Alert rules: a safe expression language over window metrics, and (to come) the alert lifecycle."""
