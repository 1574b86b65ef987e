"""What readers read, per story and over time: `newsletter stats`' story section and
`newsletter report` (terminal tables, CSV, JSON, an HTML page with charts).

A domain beside build/, audience/ and send/: it reads the build's article records and the
store's aggregations (`store.reports`), and never sends or changes anything."""
