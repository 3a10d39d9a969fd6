"""Deep Learning Core's engine: release builder, sandboxed runner, checks, scoring, reports and the CLI."""
