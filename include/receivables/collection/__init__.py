"""Collection: the dunning strategy, its compliance rules, planning and sending reminders, the
collectors' worklist, and what SendGrid's Event Webhook and customers tell us back."""
