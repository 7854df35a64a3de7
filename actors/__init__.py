"""The actor runtime (supervision, registry, mailboxes) and one module per actor kind."""
