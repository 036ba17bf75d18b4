"""The CLI's commands, one module per group (``ruckus agents ...``, ``ruckus jobs ...``) or topic."""
