"""Plan and run reports (jinja2 templates: Markdown and self-contained HTML)."""
