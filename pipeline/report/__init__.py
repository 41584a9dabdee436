"""Reports: the spec's analytics queries, Performance Baselines and dashboard widgets, as pure aggregations.

`PaneTotals` sums closed-pane snapshots (from a replay or the metrics topic, so report and live agree),
`RecordTotals` counts what panes do not keep (template slugs, error messages, build-spec runs),
`alert_spans` turns alert events into firing spans, and `build_report` puts them into one documented dict that
`render_html` draws. No I/O here.
"""
